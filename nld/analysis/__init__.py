"""Analysis of learned (or analytic) energy landscapes: minima, basins, occupancies, scores."""

from nld.analysis.energy import EnergyFn as EnergyFn
from nld.analysis.energy import hessian as hessian
from nld.analysis.energy import model_energy as model_energy
from nld.analysis.energy import value_and_grad as value_and_grad
from nld.analysis.minima import Minimum as Minimum
from nld.analysis.minima import assign_basins as assign_basins
from nld.analysis.minima import descend as descend
from nld.analysis.minima import find_minima as find_minima
from nld.analysis.occupancy import quadrature as quadrature
from nld.analysis.occupancy import second_order as second_order
from nld.analysis.occupancy import zeroth_order as zeroth_order
from nld.analysis.segmentation import Matching as Matching
from nld.analysis.segmentation import dwell_lengths as dwell_lengths
from nld.analysis.segmentation import many_to_one as many_to_one
from nld.analysis.segmentation import match_labels as match_labels
from nld.analysis.segmentation import matched_l1 as matched_l1
