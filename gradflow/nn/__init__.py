"""Neural-network building blocks: Module, Parameter, layers, losses, ``functional`` and ``init``."""

from . import functional, init, parallel, utils
from .containers import ModuleDict, ModuleList, Sequential
from .module import Module
from .modules.activation import *
from .modules.conv import *
from .modules.dropout import *
from .modules.linear import *
from .modules.loss import *
from .modules.normalization import *
from .modules.pooling import *
from .modules.sparse import *
from .modules.transformer import *
from .parallel import SyncBatchNorm
from .parameter import Parameter
