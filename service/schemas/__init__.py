"""Request and response bodies: every field with its meaning, units and an example.

Requests are strict: a number must be a JSON number (not "1.0", not true), a flag a JSON
boolean, a count a JSON integer; floats must be finite (JSON allows NaN and Infinity; they are
refused with 422); unknown fields are refused.
"""

from service.schemas.common import (
    MODEL_OUT as MODEL_OUT,
)
from service.schemas.common import (
    SESSION_ID as SESSION_ID,
)
from service.schemas.common import (
    VERSION as VERSION,
)
from service.schemas.common import (
    FieldError as FieldError,
)
from service.schemas.common import (
    Finite as Finite,
)
from service.schemas.common import (
    Health as Health,
)
from service.schemas.common import (
    ModelName as ModelName,
)
from service.schemas.common import (
    Problem as Problem,
)
from service.schemas.common import (
    Readiness as Readiness,
)
from service.schemas.common import (
    SessionId as SessionId,
)
from service.schemas.common import (
    Strict as Strict,
)
from service.schemas.common import (
    Vector as Vector,
)
from service.schemas.common import (
    model_field as model_field,
)
from service.schemas.landscape import (
    OCCUPANCY as OCCUPANCY,
)
from service.schemas.landscape import (
    RESOLUTION as RESOLUTION,
)
from service.schemas.landscape import (
    WARNINGS as WARNINGS,
)
from service.schemas.landscape import (
    BoxGrid as BoxGrid,
)
from service.schemas.landscape import (
    EnergyRequest as EnergyRequest,
)
from service.schemas.landscape import (
    EnergyResponse as EnergyResponse,
)
from service.schemas.landscape import (
    Grid as Grid,
)
from service.schemas.landscape import (
    MinimaResponse as MinimaResponse,
)
from service.schemas.landscape import (
    MinimumOut as MinimumOut,
)
from service.schemas.landscape import (
    OccupancyMethod as OccupancyMethod,
)
from service.schemas.landscape import (
    OccupancyResponse as OccupancyResponse,
)
from service.schemas.landscape import (
    PlaneGrid as PlaneGrid,
)
from service.schemas.landscape import (
    SaddleOut as SaddleOut,
)
from service.schemas.landscape import (
    TransitionsResponse as TransitionsResponse,
)
from service.schemas.landscape import (
    _grid_kind as _grid_kind,
)
from service.schemas.models import (
    ModelDetail as ModelDetail,
)
from service.schemas.models import (
    ModelsResponse as ModelsResponse,
)
from service.schemas.models import (
    ModelSummary as ModelSummary,
)
from service.schemas.models import (
    ReloadOut as ReloadOut,
)
from service.schemas.sample import (
    SampleRequest as SampleRequest,
)
from service.schemas.sample import (
    SampleResponse as SampleResponse,
)
from service.schemas.segment import (
    SegmentRequest as SegmentRequest,
)
from service.schemas.segment import (
    SegmentResponse as SegmentResponse,
)
from service.schemas.segment import (
    StepResult as StepResult,
)
from service.schemas.segment import (
    StreamRequest as StreamRequest,
)
from service.schemas.segment import (
    StreamResponse as StreamResponse,
)
