"""gradflow: a tape-based autograd framework for NVIDIA GPUs (CuPy) and CPUs (NumPy).

>>> import gradflow as gf
>>> x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

from __future__ import annotations

from .version import __version__
from . import cuda, dtypes, errors
from .autograd import (
    enable_grad,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .device import Device, device, get_default_device, set_default_device
from .dtypes import (
    bfloat16,
    bool,
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    promote_types,
    set_default_dtype,
    short,
    uint8,
)
from .tensor import Tensor
from . import ops as _ops  # noqa: E402,F401 - binds the op methods onto Tensor
from . import autograd  # noqa: E402
from .ops.activation import *
from .ops.arithmetic import *
from .ops.compare import *
from .ops.conversion import *
from .ops.creation import *
from .ops.elementwise import *
from .ops.index import *
from .ops.scatter import *
from .ops.linalg import *
from .ops.reduce import *
from .ops.statistics import *
from .ops.shape import *
from .ops.join import *
from .ops.softmax import *
from . import distributed  # noqa: E402 - never imports mpi4py; MPI starts at init_process_group
from . import nn  # noqa: E402
from . import optim  # noqa: E402
from . import utils  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import viz  # noqa: E402
from . import bench, profiler  # noqa: E402
from .dlpack import from_dlpack  # noqa: E402
from .utils import checkpoint as _checkpoint, data as _data  # noqa: E402,F401 - gradflow.utils.data after import gradflow
