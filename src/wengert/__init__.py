"""wengert: exact derivatives of NumPy programs, in forward and reverse mode, to any order.

Named after the Wengert list, the tape that reverse mode records.  Start with
``wengert.grad``, ``wengert.jvp`` and ``wengert.vjp``; write the function with
``wengert.numpy`` (or plain NumPy: traced values speak NumPy's protocols).
"""

from wengert import numpy
from wengert._saved import SavedArrayMutatedError
from wengert.api import (
    grad,
    hessian,
    holomorphic_grad,
    hvp,
    jacfwd,
    jacrev,
    jvp,
    stop_gradient,
    value_and_grad,
    vjp,
)
from wengert.core import UnexpectedTracerError, is_traced, primal_value
from wengert.custom import checkpoint, custom_jvp, custom_vjp
from wengert.graph import EvaluationGraph, evaluation_graph
from wengert.numpy._update import ViewAssignmentError
from wengert.testing import check_grads
from wengert.tracing import EvaluationTrace, evaluation_trace
from wengert.tree import register_pytree_node, tree_flatten, tree_leaves, tree_map, tree_unflatten

__version__ = "0.1.0"

__all__ = [
    "numpy",
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacfwd",
    "jacrev",
    "hessian",
    "hvp",
    "holomorphic_grad",
    "stop_gradient",
    "custom_vjp",
    "custom_jvp",
    "checkpoint",
    "check_grads",
    "evaluation_trace",
    "EvaluationTrace",
    "evaluation_graph",
    "EvaluationGraph",
    "is_traced",
    "primal_value",
    "UnexpectedTracerError",
    "SavedArrayMutatedError",
    "ViewAssignmentError",
    "register_pytree_node",
    "tree_flatten",
    "tree_unflatten",
    "tree_map",
    "tree_leaves",
]
