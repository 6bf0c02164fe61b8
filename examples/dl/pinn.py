"""A physics-informed neural network (PINN) in wengert.dl, after MATLAB's "Solve Partial
Differential Equation with L-BFGS Method and Deep Learning" (which solves Burgers' equation);
here the 2-D Poisson equation, whose exact solution is known:

    −Δu = 2π² sin(πx) sin(πy)  on [0, 1]²,    u = 0 on the boundary,
    exact solution u(x, y) = sin(πx) sin(πy).

Same structure and names as the MATLAB page:

* ``parameters``: a dict (MATLAB's struct) of fully connected layers ``fc1`` … ``fcN``
  initialised with ``initializeHe``/``initializeZeros`` (initialize_params.py), in double
  precision;
* ``model(parameters, X)``: ``fullyconnect`` and ``tanh`` on the "CB" coordinates X (2×N);
* ``model_loss(parameters, X, F, XB, UB)``: the PDE residual f = −Δu − F at the interior
  collocation points, with the Laplacian from ``dllaplacian(U, X, "C")`` (or, with
  ``--residual dlgradient``, from ``dlgradient(..., enable_higher_derivatives=True)`` twice),
  plus the boundary misfit: loss = mse(f, 0) + mse(U(XB), UB); then
  ``dlgradient(loss, parameters)``;
* ``accfun = dlaccelerate(model_loss)``: the traced loss is cached and replayed;
* training: ``adamupdate`` first, then ``lbfgsupdate`` with an ``lbfgsState``
  (``lossFcn = lambda parameters: dlfeval(accfun, parameters, X, F, XB, UB)``), stopping
  when the gradient norm or the step norm falls below its tolerance or the line search fails;
  a ``trainingProgressMonitor`` records the loss;
* the relative L2 error ‖u − u_exact‖ / ‖u_exact‖ on a 101×101 grid, after each stage; the
  solution, its error and the loss history go to ``pinn.png``.

    python examples/dl/pinn.py            # full run (see README.md)
    python examples/dl/pinn.py --quick    # a few hundred Adam and 20 L-BFGS iterations
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import time

import numpy as np

import wengert.dl as dl

HERE = os.path.dirname(os.path.abspath(__file__))


def _sibling(name: str):
    """Import another script of this folder (also when this one is loaded by path)."""
    spec = importlib.util.spec_from_file_location(
        f"dl_example_{name}", os.path.join(HERE, f"{name}.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_init = _sibling("initialize_params")
initializeHe = _init.initializeHe
initializeZeros = _init.initializeZeros


# ---------------------------------------------------------------------------------------------
# The problem
# ---------------------------------------------------------------------------------------------


def exact_solution(x, y):
    """u(x, y) = sin(πx) sin(πy)."""
    return np.sin(np.pi * x) * np.sin(np.pi * y)


def source(x, y):
    """F = −Δu = 2π² sin(πx) sin(πy)."""
    return 2 * np.pi**2 * np.sin(np.pi * x) * np.sin(np.pi * y)


def collocation_points(numInternal: int, numPerEdge: int, rng: np.random.Generator):
    """(X, F, XB, UB): random interior points (2×N, "CB") with the source there, and evenly
    spaced points on the four edges with the boundary values (0)."""
    X = rng.random((2, numInternal))
    F = source(X[0:1], X[1:2])
    s = np.linspace(0, 1, numPerEdge, endpoint=False)
    zero, one = np.zeros_like(s), np.ones_like(s)
    XB = np.concatenate(
        [np.stack([s, zero]), np.stack([one, s]), np.stack([1 - s, one]), np.stack([zero, 1 - s])],
        axis=1,
    )
    UB = exact_solution(XB[0:1], XB[1:2])  # zero up to rounding
    return (dl.dlarray(X, "CB"), dl.dlarray(F, "CB"), dl.dlarray(XB, "CB"), dl.dlarray(UB, "CB"))


# ---------------------------------------------------------------------------------------------
# The model function and its loss
# ---------------------------------------------------------------------------------------------


def initialize_parameters(numLayers: int, numNeurons: int, rng=None) -> dict:
    """fc1: numNeurons×2, fc2 … fc(numLayers−1): numNeurons×numNeurons, fcN: 1×numNeurons;
    He-initialised weights, zero biases, double precision."""
    parameters = {}
    numIn = 2
    for i in range(1, numLayers + 1):
        numOut = 1 if i == numLayers else numNeurons
        parameters[f"fc{i}"] = {
            "Weights": initializeHe([numOut, numIn], numIn, "double", rng=rng),
            "Bias": initializeZeros([numOut, 1], "double"),
        }
        numIn = numOut
    return parameters


def model(parameters: dict, X):
    """U = fcN(tanh(… tanh(fc1(X)))) for the "CB" coordinates X."""
    numLayers = len(parameters)
    U = dl.fullyconnect(X, parameters["fc1"]["Weights"], parameters["fc1"]["Bias"])
    for i in range(2, numLayers + 1):
        U = np.tanh(U)
        U = dl.fullyconnect(U, parameters[f"fc{i}"]["Weights"], parameters[f"fc{i}"]["Bias"])
    return U


def laplacian_by_dlgradient(U, X):
    """Δu = u_xx + u_yy with ``dlgradient(..., enable_higher_derivatives=True)``: the gradient
    of Σu (one observation's u depends only on its own coordinates), then the gradients of
    its two components."""
    gradientsU = dl.dlgradient(np.sum(U), X, enable_higher_derivatives=True)
    Ux, Uy = gradientsU[0:1, :], gradientsU[1:2, :]
    Uxx = dl.dlgradient(np.sum(Ux), X, enable_higher_derivatives=True)[0:1, :]
    Uyy = dl.dlgradient(np.sum(Uy), X, enable_higher_derivatives=True)[1:2, :]
    return Uxx + Uyy


def make_model_loss(residual: str = "dllaplacian", boundaryWeight: float = 1.0):
    """modelLoss with the Laplacian from ``dllaplacian`` or from two ``dlgradient`` calls, and
    the boundary misfit weighted by ``boundaryWeight``."""

    def model_loss(parameters: dict, X, F, XB, UB):
        """[loss, gradients] = modelLoss(parameters, X, F, XB, UB)."""
        U = model(parameters, X)
        if residual == "dllaplacian":
            lap = dl.dllaplacian(U, X, "C")
        else:
            lap = laplacian_by_dlgradient(U, X)
        f = -lap - F
        lossF = dl.mse(f, np.zeros(f.shape))
        UBPred = model(parameters, XB)
        lossU = dl.mse(UBPred, UB)
        loss = lossF + boundaryWeight * lossU
        gradients = dl.dlgradient(loss, parameters)
        return loss, gradients

    return model_loss


# ---------------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------------


def grid(n: int = 101):
    """The n×n evaluation grid as "CB" coordinates, and its mesh arrays."""
    g = np.linspace(0, 1, n)
    xx, yy = np.meshgrid(g, g, indexing="xy")
    return dl.dlarray(np.stack([xx.ravel(), yy.ravel()]), "CB"), xx, yy


def relative_error(parameters: dict, XGrid, xx, yy) -> tuple[float, np.ndarray]:
    """‖u − u_exact‖₂ / ‖u_exact‖₂ on the grid, and the predicted u there."""
    U = dl.extractdata(model(parameters, XGrid)).reshape(xx.shape)
    exact = exact_solution(xx, yy)
    return float(np.linalg.norm(U - exact) / np.linalg.norm(exact)), U


def _norm(tree) -> float:
    return math.sqrt(sum(float(np.sum(dl.extractdata(v) ** 2)) for v in dl.iter_dlarrays(tree)))


def save_figure(path, xx, yy, U, history, title) -> str:
    """Three panels: the PINN solution, its error against the exact one, the loss (log)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4.2), dpi=100)
    ax = fig.add_subplot(1, 3, 1)
    im = ax.pcolormesh(xx, yy, U, shading="auto", cmap="viridis")
    fig.colorbar(im, ax=ax)
    ax.set_title("PINN solution u(x, y)")
    ax.set_aspect("equal")
    ax = fig.add_subplot(1, 3, 2)
    im = ax.pcolormesh(xx, yy, np.abs(U - exact_solution(xx, yy)), shading="auto", cmap="magma")
    fig.colorbar(im, ax=ax)
    ax.set_title("|u − sin(πx) sin(πy)|")
    ax.set_aspect("equal")
    ax = fig.add_subplot(1, 3, 3)
    for stage, (its, losses) in history.items():
        ax.semilogy(its, losses, label=stage)
    ax.set_xlabel("Iteration")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("training loss")
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run: 300 Adam, 20 L-BFGS")
    ap.add_argument("--adam-iterations", type=int, default=2000)
    ap.add_argument("--lbfgs-iterations", type=int, default=3000, help="maxIterations")
    ap.add_argument("--learn-rate", type=float, default=0.01, help="Adam's initial learn rate")
    ap.add_argument("--num-layers", type=int, default=4)
    ap.add_argument("--num-neurons", type=int, default=20)
    ap.add_argument("--num-internal", type=int, default=1000, help="interior collocation points")
    ap.add_argument("--num-per-edge", type=int, default=50, help="boundary points per edge")
    ap.add_argument("--boundary-weight", type=float, default=1.0, help="weight of mse(U(XB), UB)")
    ap.add_argument("--residual", choices=("dllaplacian", "dlgradient"), default="dllaplacian")
    ap.add_argument("--no-accelerate", action="store_true", help="plain dlfeval, no dlaccelerate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=HERE, help="folder for the PNG")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.adam_iterations, args.lbfgs_iterations, args.num_internal = 300, 20, 300

    t0 = time.perf_counter()
    gen = dl.rng(args.seed)
    X, F, XB, UB = collocation_points(args.num_internal, args.num_per_edge, gen)
    XGrid, xx, yy = grid()
    parameters = initialize_parameters(args.num_layers, args.num_neurons, rng=gen)

    model_loss = make_model_loss(args.residual, args.boundary_weight)
    accfun = model_loss if args.no_accelerate else dl.dlaccelerate(model_loss)

    numIterationsAdam = args.adam_iterations
    maxIterations = args.lbfgs_iterations
    gradientTolerance = 1e-7
    stepTolerance = 1e-9
    monitor = dl.trainingProgressMonitor(
        metrics=["TrainingLoss"],
        info=["Stage", "Iteration", "GradientsNorm", "StepNorm"],
        x_label="Iteration",
        progress_bar=False if args.no_progress else None,
    )
    total = numIterationsAdam + maxIterations
    errors = {"initial": relative_error(parameters, XGrid, xx, yy)[0]}
    history: dict = {"Adam": ([], []), "L-BFGS": ([], [])}

    # Stage 1: Adam, with the learning rate decaying to a tenth
    averageGrad = averageSqGrad = None
    iteration = 0
    t_adam = time.perf_counter()
    for iteration in range(1, numIterationsAdam + 1):
        if monitor.stop:
            break
        loss, gradients = dl.dlfeval(accfun, parameters, X, F, XB, UB)
        learnRate = args.learn_rate * 0.1 ** (iteration / max(numIterationsAdam, 1))
        parameters, averageGrad, averageSqGrad = dl.adamupdate(
            parameters, gradients, averageGrad, averageSqGrad, iteration, learnRate
        )
        monitor.record_metrics(iteration, TrainingLoss=loss)
        history["Adam"][0].append(iteration)
        history["Adam"][1].append(float(loss))
        if iteration % 50 == 0:
            monitor.update_info(Stage="Adam", Iteration=iteration, GradientsNorm=_norm(gradients))
        monitor.progress = 100 * iteration / total
    t_adam = time.perf_counter() - t_adam
    errors["adam"] = relative_error(parameters, XGrid, xx, yy)[0]

    # Stage 2: L-BFGS
    lossFcn = lambda parameters: dl.dlfeval(accfun, parameters, X, F, XB, UB)
    solverState = dl.lbfgsState()
    t_lbfgs = time.perf_counter()
    stop_reason = "maxIterations"
    k = 0
    while k < maxIterations and not monitor.stop:
        k += 1
        parameters, solverState = dl.lbfgsupdate(parameters, lossFcn, solverState)
        gradientsNorm = _norm(solverState.gradients)
        stepNorm = (
            float(np.linalg.norm(solverState.step_history[-1]))
            if solverState.line_search_status == "completed" and solverState.step_history
            else 0.0
        )
        loss = float(dl.extractdata(solverState.loss))
        monitor.record_metrics(numIterationsAdam + k, TrainingLoss=loss)
        monitor.update_info(
            Stage="L-BFGS", Iteration=k, GradientsNorm=gradientsNorm, StepNorm=stepNorm
        )
        monitor.progress = 100 * (numIterationsAdam + k) / total
        history["L-BFGS"][0].append(numIterationsAdam + k)
        history["L-BFGS"][1].append(loss)
        if gradientsNorm < gradientTolerance:
            stop_reason = "gradient tolerance"
            break
        if solverState.line_search_status == "failed":
            stop_reason = "line search failed"
            break
        if stepNorm < stepTolerance:
            stop_reason = "step tolerance"
            break
    t_lbfgs = time.perf_counter() - t_lbfgs
    errors["lbfgs"], U = relative_error(parameters, XGrid, xx, yy)
    monitor.close()
    elapsed = time.perf_counter() - t0

    title = (
        f"−Δu = 2π² sin(πx) sin(πy): relative L2 error {errors['lbfgs']:.2e} "
        f"({numIterationsAdam} Adam + {k} L-BFGS iterations)"
    )
    png = save_figure(os.path.join(args.out, "pinn.png"), xx, yy, U, history, title)
    losses = np.concatenate([history["Adam"][1], history["L-BFGS"][1]])
    print(
        f"Adam: {numIterationsAdam} iterations in {t_adam:.1f} s, loss {losses[0]:.3g} -> "
        f"{history['Adam'][1][-1] if history['Adam'][1] else float('nan'):.3g}, relative L2 error "
        f"{errors['initial']:.3g} -> {errors['adam']:.3g}"
    )
    print(
        f"L-BFGS: {k} iterations in {t_lbfgs:.1f} s (stopped: {stop_reason}), loss "
        f"{losses[-1]:.3g}, relative L2 error {errors['lbfgs']:.3g}"
    )
    print(f"total {elapsed:.1f} s ({args.residual}, "
          f"{'plain dlfeval' if args.no_accelerate else 'dlaccelerate'}); figure: {png}")  # fmt: skip
    return {
        "relative_error": errors["lbfgs"],
        "errors": errors,
        "loss": losses,
        "adam_iterations": numIterationsAdam,
        "lbfgs_iterations": k,
        "stop_reason": stop_reason,
        "seconds": elapsed,
        "seconds_adam": t_adam,
        "seconds_lbfgs": t_lbfgs,
        "parameters": parameters,
        "png": png,
    }


if __name__ == "__main__":
    main()
