"""Data sets, hidden-Markov generators and the Bayes limits of segmentation."""

from nld.data.dataset import Dataset as Dataset
from nld.data.dataset import load as load
from nld.data.dataset import save as save
from nld.data.dataset import validate as validate
from nld.data.hmm import HMMSpec as HMMSpec
from nld.data.hmm import generate_splits as generate_splits
from nld.data.hmm import load_spec as load_spec
from nld.data.hmm import sample as sample
from nld.data.limits import bayes_limits as bayes_limits
