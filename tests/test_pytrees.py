"""Pytrees: nested tuples, lists, dicts, namedtuples, dataclasses and registered classes as
inputs and outputs; gradients have the structure of their inputs."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest

import wengert.numpy as wnp
from wengert import (
    grad,
    jacfwd,
    jacrev,
    jvp,
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_unflatten,
    value_and_grad,
    vjp,
)
from wengert.tree import keystr, leaf_paths, tree_structure

Point = namedtuple("Point", "x y")


@dataclasses.dataclass
class Layer:
    w: np.ndarray
    b: float


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: np.ndarray
    scale: float = 1.0


class Pair:
    """A user class made a container with register_pytree_node."""

    def __init__(self, left, right, tag="pair"):
        self.left, self.right, self.tag = left, right, tag


register_pytree_node(
    Pair, lambda p: ((p.left, p.right), p.tag), lambda tag, ch: Pair(ch[0], ch[1], tag)
)


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def same_structure(a, b):
    assert tree_structure(a) == tree_structure(b), (tree_structure(a), tree_structure(b))


def params():
    return {
        "layers": [Layer(np.array([1.0, -2.0]), 0.5), Layer(np.array([[0.3]]), -1.0)],
        "point": Point(np.array(2.0), 3.0),
        "pair": Pair(np.array([1.0, 2.0, 3.0]), (4.0, None)),
        "frozen": Frozen(np.array([0.5, 0.25]), 2.0),
        "none": None,
    }


def loss(p):
    l0, l1 = p["layers"]
    return (
        wnp.sum(l0.w**2) * l0.b
        + wnp.sum(l1.w) * l1.b
        + p["point"].x * p["point"].y
        + wnp.sum(wnp.sin(p["pair"].left)) * p["pair"].right[0]
        + wnp.sum(p["frozen"].a) * p["frozen"].scale
    )


# ---------------------------------------------------------------------------------------------
# The tree utilities
# ---------------------------------------------------------------------------------------------


def test_flatten_unflatten_roundtrip():
    p = params()
    leaves, tree = tree_flatten(p)
    assert len(leaves) == tree.num_leaves == 10
    q = tree_unflatten(tree, leaves)
    same_structure(p, q)
    assert isinstance(q["layers"][0], Layer) and isinstance(q["point"], Point)
    assert isinstance(q["pair"], Pair) and q["pair"].tag == "pair"
    assert isinstance(q["frozen"], Frozen) and q["none"] is None
    assert q["pair"].right[1] is None


def test_none_is_an_empty_container():
    assert tree_leaves([None, 1.0, (None,)]) == [1.0]
    assert tree_map(lambda x: x * 2, {"a": None, "b": 1.0}) == {"a": None, "b": 2.0}


def test_tree_map_several_trees():
    out = tree_map(lambda a, b: a + b, {"x": 1.0, "y": [2.0]}, {"x": 10.0, "y": [20.0]})
    assert out == {"x": 11.0, "y": [22.0]}
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda a, b: a + b, [1.0, 2.0], [1.0])


def test_dict_structure_ignores_key_order_but_keeps_it():
    a = {"b": 1.0, "a": 2.0}
    b = {"a": 3.0, "b": 4.0}
    assert tree_structure(a) == tree_structure(b)
    assert tree_leaves(a) == [2.0, 1.0]  # sorted keys
    rebuilt = tree_unflatten(tree_structure(a), [20.0, 10.0])
    assert list(rebuilt) == ["b", "a"] and rebuilt == {"b": 10.0, "a": 20.0}


def test_ordered_and_default_dicts():
    o1, o2 = OrderedDict(a=1.0, b=2.0), OrderedDict(b=1.0, a=2.0)
    assert tree_structure(o1) != tree_structure(o2)
    d = defaultdict(list, {"k": 1.0})
    m = tree_map(lambda x: x + 1, d)
    assert isinstance(m, defaultdict) and m.default_factory is list and m["k"] == 2.0
    assert isinstance(tree_map(lambda x: x, o2), OrderedDict)


def test_structures_of_different_types_differ():
    assert tree_structure((1.0, 2.0)) != tree_structure([1.0, 2.0])
    assert tree_structure(Point(1.0, 2.0)) != tree_structure((1.0, 2.0))
    assert tree_structure({"a": 1.0}) != tree_structure({"b": 1.0})
    assert tree_structure([None]) != tree_structure([1.0])


def test_leaf_paths_and_repr():
    tree = tree_structure({"w": [1.0, Point(2.0, 3.0)], "d": Layer(1.0, 2.0)})
    assert leaf_paths(tree) == ["['d'].w", "['d'].b", "['w'][0]", "['w'][1].x", "['w'][1].y"]
    assert keystr(("0", "'w'", ".b")) == "[0]['w'].b"
    assert repr(tree) == "dict{'d': Layer(w=*, b=*), 'w': list[*, Point(x=*, y=*)]}"


# ---------------------------------------------------------------------------------------------
# Pytrees through the transformations
# ---------------------------------------------------------------------------------------------


def test_grad_has_input_structure():
    p = params()
    g = grad(loss)(p)
    same_structure(g, p)
    close(g["layers"][0].w, 2 * p["layers"][0].w * 0.5)
    close(g["layers"][0].b, 5.0)
    close(g["layers"][1].w, [[-1.0]])
    close(g["layers"][1].b, 0.3)
    close(g["point"].x, 3.0)
    close(g["point"].y, 2.0)
    close(g["pair"].left, np.cos([1.0, 2.0, 3.0]) * 4.0)
    close(g["pair"].right[0], np.sum(np.sin([1.0, 2.0, 3.0])))
    assert g["pair"].right[1] is None and g["none"] is None and g["pair"].tag == "pair"
    close(g["frozen"].a, [2.0, 2.0])
    close(g["frozen"].scale, 0.75)
    # python scalars come back as 0-d float arrays
    assert isinstance(g["layers"][0].b, np.ndarray) and g["layers"][0].b.shape == ()


def test_grad_nested_tuples_and_lists():
    x = ([1.0, (2.0, np.array([3.0, 4.0]))], 5.0)
    f = lambda t: t[0][0] * t[0][1][0] + wnp.sum(t[0][1][1]) * t[1]
    g = grad(f)(x)
    same_structure(g, x)
    close(g[0][0], 2.0)
    close(g[0][1][0], 1.0)
    close(g[0][1][1], [5.0, 5.0])
    close(g[1], 7.0)


def test_grad_several_pytree_arguments():
    a, b = {"u": np.ones(2)}, [2.0, np.array([1.0, -1.0])]
    f = lambda a, b: wnp.sum(a["u"] * b[1]) * b[0]
    ga, gb = grad(f, argnums=(0, 1))(a, b)
    close(ga["u"], [2.0, -2.0])
    close(gb[0], 0.0)
    close(gb[1], [2.0, 2.0])


def test_value_and_grad_with_pytree_aux():
    (v, aux), g = value_and_grad(lambda p: (loss(p), {"p": p["point"]}), has_aux=True)(params())
    assert isinstance(aux["p"], Point)


def test_vjp_pytree_inputs_and_outputs():
    p = {"x": np.array([1.0, 2.0]), "y": 3.0}

    def f(p):
        return Point(p["x"] * p["y"], [wnp.sum(p["x"]), None])

    out, pull = vjp(f, p)
    assert isinstance(out, Point) and out.y[1] is None
    (ct,) = pull(Point(np.array([1.0, 1.0]), [np.array(2.0), None]))
    same_structure(ct, p)
    close(ct["x"], [3.0 + 2.0, 3.0 + 2.0])
    close(ct["y"], 3.0)


def test_vjp_cotangent_dict_in_another_key_order():
    out, pull = vjp(lambda x: {"b": x * 2, "a": x * 3}, np.ones(2))
    (ct,) = pull({"a": np.ones(2), "b": np.zeros(2)})
    close(ct, [3.0, 3.0])


def test_jvp_pytree():
    p = {"w": np.array([1.0, 2.0]), "s": Point(2.0, 0.5)}
    t = {"w": np.array([0.1, 0.2]), "s": Point(1.0, 0.0)}
    out, tan = jvp(lambda p: {"o": p["w"] * p["s"].x}, (p,), (t,))
    close(out["o"], [2.0, 4.0])
    close(tan["o"], [0.1 * 2 + 1.0, 0.2 * 2 + 2.0])


@pytest.mark.parametrize("jac", [jacfwd, jacrev])
def test_jacobian_pytree_in_and_out(jac):
    p = {"a": np.array([1.0, 2.0]), "b": 3.0}
    f = lambda p: (p["a"] * p["b"], wnp.sum(p["a"]))
    J = jac(f)(p)
    assert isinstance(J, tuple) and set(J[0]) == {"a", "b"}
    close(J[0]["a"], 3.0 * np.eye(2))
    close(J[0]["b"], [1.0, 2.0])
    close(J[1]["a"], [1.0, 1.0])
    close(J[1]["b"], 0.0)


def test_registered_class_as_output():
    out, pull = vjp(lambda x: Pair(x * 2, x[0], tag="t"), np.array([1.0, 2.0]))
    assert isinstance(out, Pair) and out.tag == "t"
    (ct,) = pull(Pair(np.ones(2), np.array(1.0), tag="t"))
    close(ct, [3.0, 2.0])


def test_dataclass_argument_fields_all_differentiated():
    layer = Layer(np.array([1.0, 2.0]), 3.0)
    g = grad(lambda l: wnp.sum(l.w) * l.b)(layer)
    assert isinstance(g, Layer)
    close(g.w, [3.0, 3.0])
    close(g.b, 3.0)
