"""The network object: a layer (usually a Sequential) bundled with its learnables and state,
as MATLAB's ``dlnetwork``, and registered as a pytree so ``grad`` works on it directly.

``net.forward(x, rng=...)`` runs in training mode and returns ``(y, new_state)`` without
mutating the network; ``net.predict(x)`` runs in inference mode.  ``grad(loss)(net, ...)``
returns a Network holding the gradients (of the params; the state's are zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from wengert.core import Tracer, primal_value
from wengert.nn.layers import Layer, Sequential
from wengert.tree import register_pytree_node, tree_flatten, tree_map

__all__ = ["Network", "accuracy"]


class Network:
    """Layers with their learnables (``params``) and state (``state``), both pytrees of arrays.

    ``Network(layers, input_shape, rng=0, dtype=np.float32)``: ``layers`` is a Layer or a list
    of them (made a :class:`~wengert.nn.layers.Sequential`), ``input_shape`` the shape of one
    example (no batch axis), ``rng`` a NumPy Generator or a seed for the initialisers.
    ``params``/``state`` given explicitly skip the initialisation.

    A Network is immutable: :meth:`with_params`, :meth:`with_state` and :meth:`astype` return
    new ones that share the layers.  As a pytree its children are ``(params, state)``.
    """

    __slots__ = ("model", "input_shape", "dtype", "params", "state")

    def __init__(
        self,
        layers: Layer | Sequence[Layer],
        input_shape: Sequence[int],
        rng: np.random.Generator | int | None = 0,
        dtype: Any = np.float32,
        params: Any = None,
        state: Any = None,
    ) -> None:
        model = layers if isinstance(layers, Layer) else Sequential(*layers)
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"Network: dtype must be a float type (float32, float64), not {dt}")
        self.model = model
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dtype = dt
        if params is None or state is None:
            g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            p0, s0 = model.init(g, self.input_shape, dt)
            params = p0 if params is None else params
            state = s0 if state is None else state
        self.params = params
        self.state = state

    @classmethod
    def _rebuild(cls, aux, children) -> Network:
        net = object.__new__(cls)
        net.model, net.input_shape, net.dtype = aux
        net.params, net.state = children
        return net

    # -- running ------------------------------------------------------------------------------

    def _input(self, x: Any) -> Any:
        if isinstance(x, Tracer):
            return x
        a = np.asarray(x)
        if a.dtype.kind == "f" and a.dtype != self.dtype:
            return a.astype(self.dtype)  # a plain input takes the network's precision
        return a

    def apply(
        self,
        params: Any,
        state: Any,
        x: Any,
        training: bool = False,
        rng: np.random.Generator | None = None,
    ) -> tuple[Any, Any]:
        """The pure function of the network: ``(y, new_state)`` with the given params/state."""
        return self.model.apply(params, state, self._input(x), training, rng)

    def forward(self, x: Any, rng: np.random.Generator | None = None) -> tuple[Any, Any]:
        """Training behaviour (batch statistics, dropout drawing from ``rng``): ``(y,
        new_state)``.  The network itself is not changed; keep the state with
        ``net.with_state(new_state)``."""
        return self.model.apply(self.params, self.state, self._input(x), True, rng)

    def predict(self, x: Any, batch_size: int | None = None) -> Any:
        """Inference behaviour (running statistics, no dropout).  ``batch_size`` evaluates a
        large plain input in chunks."""
        x = self._input(x)
        n = np.shape(primal_value(x))[0] if np.ndim(primal_value(x)) else 0
        if batch_size is None or isinstance(x, Tracer) or n <= batch_size:
            return self.model.apply(self.params, self.state, x, False, None)[0]
        outs = [
            self.model.apply(self.params, self.state, x[i : i + batch_size], False, None)[0]
            for i in range(0, n, batch_size)
        ]
        return np.concatenate(outs)

    __call__ = predict

    # -- new networks -------------------------------------------------------------------------

    def with_params(self, params: Any) -> Network:
        """The same network with other learnables."""
        return Network._rebuild((self.model, self.input_shape, self.dtype), (params, self.state))

    def with_state(self, state: Any) -> Network:
        """The same network with another state (e.g. the one ``forward`` returned)."""
        return Network._rebuild((self.model, self.input_shape, self.dtype), (self.params, state))

    def astype(self, dtype: Any) -> Network:
        """A copy with every float learnable and state array cast to ``dtype`` (e.g. float64)."""
        dt = np.dtype(dtype)

        def cast(a):
            a = primal_value(a)
            return a.astype(dt) if np.result_type(a).kind == "f" else a

        return Network._rebuild(
            (self.model, self.input_shape, dt),
            (tree_map(cast, self.params), tree_map(cast, self.state)),
        )

    # -- inspection ---------------------------------------------------------------------------

    @property
    def num_params(self) -> int:
        """The number of learnable scalars."""
        return int(sum(np.size(primal_value(p)) for p in tree_flatten(self.params)[0]))

    @property
    def layers(self) -> list[Layer]:
        """The layers (one, if the model is not a Sequential)."""
        return list(self.model.layers) if isinstance(self.model, Sequential) else [self.model]

    def summary(self) -> str:
        """A table of the layers, their output shapes and learnable counts."""
        rows = [("layer", "type", "output shape", "learnables")]
        if isinstance(self.model, Sequential):
            shapes = dict(self.model.shapes(self.input_shape, self.dtype))
            for name, layer in zip(self.model.names, self.model.layers):
                n = sum(np.size(a) for a in tree_flatten(self.params.get(name, {}))[0])
                rows.append((name, repr(layer), str(shapes[name]), str(n)))
        else:
            rows.append(("model", repr(self.model), "", str(self.num_params)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"total learnables: {self.num_params} ({self.dtype.name})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Network(input_shape={self.input_shape}, dtype={self.dtype.name}, "
            f"learnables={self.num_params},\n{self.model!r})"
        )


register_pytree_node(
    Network,
    lambda n: ([n.params, n.state], (n.model, n.input_shape, n.dtype)),
    Network._rebuild,
)


def accuracy(scores: Any, labels: Any) -> float:
    """The fraction of rows whose arg-max score is the label (integer labels, or one-hot /
    probability targets whose arg-max is taken)."""
    s = np.asarray(primal_value(scores))
    y = np.asarray(primal_value(labels))
    if y.ndim == s.ndim:
        y = y.argmax(axis=-1)
    return float(np.mean(s.argmax(axis=-1) == y))
