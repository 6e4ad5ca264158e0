"""Batched, differentiable multi-class l2 DeepFool (Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016, Alg. 2).

At the current point, for every candidate class k other than the starting label k̂,
``f'_k = f_k - f_k̂`` and ``w'_k = ∇f_k - ∇f_k̂``; the step goes to the nearest linearised boundary,
``l = argmin_k |f'_l| / ||w'_l||``, ``r_i = |f'_l| / ||w'_l||² · w'_l``. The result is
``r = (1 + overshoot) Σ r_i``.

Batched over samples *and* candidates: one forward per step and one vectorised backward
(``is_grads_batched``) gives all candidate gradients at once; samples that are fooled leave the batch.
With ``create_graph=True`` the perturbation is differentiable with respect to the model's weights
(Deep Defense, Yan et al. NeurIPS 2018): the chosen class l is a constant for differentiation, so the
differentiable graph is built for it alone with a single vector-Jacobian product.

``screen`` (attacks without ``create_graph``) takes the K−1 candidate gradients from a bfloat16 copy of the
forward graph and then, in float32, only those of the candidates that may be nearest: every step's direction and
length stay float32; only which candidates are computed exactly is decided in bfloat16.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import torch
from torch import nn

from ddzoo.errors import InvalidArgumentError, echo

Linearization = Literal["accumulated", "overshoot"]
Oracle = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class DeepFoolResult:
    """What :func:`deepfool` found, per sample.

    Attributes:
        perturbation: r with ``x + r`` the adversarial point (already clipped when ``bounds`` were given).
        iterations: gradient steps taken (0 for a sample already at its target; a search ended by a zero step
            counts the zero steps it would have repeated).
        fooled: whether ``x + r`` is misclassified (untargeted) or classified as the target (targeted).
        start_labels: the label k̂ the attack started from (the model's prediction on x).
    """

    perturbation: torch.Tensor
    iterations: torch.Tensor
    fooled: torch.Tensor
    start_labels: torch.Tensor

    def rho(self, x: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
        """Per-sample ``||r||₂ / ||x||₂`` (``eps`` inside the norms keeps it differentiable at 0)."""
        return l2_norms(self.perturbation, eps) / l2_norms(x, eps)


@dataclass
class DeepFoolTrace:
    """The decisions an untargeted :func:`deepfool` run took, recorded so that another implementation of the same
    classifier (a deployed artifact) can be checked against them with forward passes only.

    Attributes:
        checks: per success check, ``(rows, points, fooled)``: the images (rows of the attacked batch), the
            points looked at and the verdict there.
        steps: per step, ``(rows, points, candidates, norms, chosen, value, estimated, exact)``: where the step
            linearised, the rows' candidate classes (k̂ first), ``||w'_k||`` of every other candidate, the chosen
            column l (into ``candidates[:, 1:]``), ``f'_l``, and with the bfloat16 screen the estimated norms and
            which candidates were computed in float32 (without it: ``norms`` and all).
        screen: the run's ``screen`` margin.
    """

    checks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    steps: list[tuple[torch.Tensor, ...]] = field(default_factory=list)
    screen: float = 0.0

    def extend(self, other: DeepFoolTrace, rows: torch.Tensor) -> None:
        """Append ``other``, a trace of a run on ``x[rows]``, in this trace's row numbering."""
        self.checks += [(rows[r], *rest) for r, *rest in other.checks]
        self.steps += [(rows[r], *rest) for r, *rest in other.steps]


def l2_norms(v: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """l2 norm over all but the first axis, ``sqrt(Σv² + eps²)``."""
    return (v.flatten(1).pow(2).sum(1) + eps * eps).sqrt()


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def deepfool(
    model: nn.Module,
    x: torch.Tensor,
    *,
    max_iter: int = 50,
    overshoot: float = 0.02,
    num_candidates: int = 10,
    targets: torch.Tensor | None = None,
    bounds: tuple[float, float] | None = None,
    linearize_at: Linearization = "accumulated",
    create_graph: bool = False,
    full_graph: bool = False,
    clean_logits: torch.Tensor | None = None,
    step_margin: float | None = None,
    oracle: Oracle | None = None,
    trace: DeepFoolTrace | None = None,
    screen: float = 0.0,
    eps: float = 1e-5,
) -> DeepFoolResult:
    """Run l2 DeepFool on a batch.

    Args:
        model: maps x to logits (N, C); its mode (train/eval) is left as it is.
        x: inputs (N, ...), the space in which perturbations are measured.
        max_iter: gradient steps at most (5 in Deep Defense training, 50 in the DeepFool paper).
        overshoot: η; the result is ``(1 + η) Σ r_i`` and success is checked there.
        num_candidates: untargeted: the top-K classes of the clean logits, k̂ included (K = 10 in the paper).
        targets: if given, a targeted attack toward these labels; success means the prediction equals
            the target. Each step linearises the boundary between the target and the strongest other class
            at the current point (candidates {current prediction, target}, as the Deep Defense code does).
        bounds: if given, the attacked points ``x + (1+η) Σ r_i`` are clipped to this box inside the loop
            while the unclipped sum accumulates (foolbox's semantics); None is the paper's unconstrained ρ₂.
        linearize_at: ``"accumulated"`` linearises at ``x + Σ r_i`` (the Deep Defense reference code);
            ``"overshoot"`` at ``x + (1+η) Σ r_i`` (the original DeepFool code and foolbox).
        create_graph: make the returned perturbation differentiable w.r.t. the model's parameters.
        full_graph: with ``create_graph``, build the differentiable graph for every candidate instead of
            the chosen one only (same gradient, far more work; for tests and comparisons).
        clean_logits: ``model(x)`` if already computed (saves a forward pass).
        step_margin: added to each step's length |f'_l|/||w'_l|| (the original DeepFool code and foolbox
            add 1e-4). Clipping shortens steps, so a box-constrained attack approaches the boundary
            geometrically and may never cross it without a margin. Default: 1e-4 with ``bounds``, else 0
            (keeping the unconstrained step exact).
        oracle: logits of another implementation of the same classifier (e.g. a deployed ONNX artifact);
            when given, the clean prediction, the candidates, every step's logit differences f' and every
            success check come from it, and only the gradients w' from ``model``. Not with ``create_graph``.
        trace: if given, every check and step is recorded into it (untargeted, without ``create_graph``).
        screen: if > 0 (without ``create_graph``; the model's rows independent, as in eval mode), each step
            estimates the candidates' distances ``|f'_k| / ||w'_k||`` from bfloat16 gradients (autocast) and
            recomputes in float32 the gradients of those within ``1 + screen`` of the smallest estimate; the
            nearest of these gives the step. Where bfloat16's error in ``||w'_k||`` stays under about half the
            margin, every decision and step equals the float32 attack's (:data:`SCREEN`; see
            :func:`bf16_is_fast`).
        eps: added inside norms, keeping divisions and their gradients finite.

    Returns:
        a :class:`DeepFoolResult`.
    """
    if max_iter < 0 or overshoot < 0:
        raise InvalidArgumentError(f"max_iter and overshoot must be >= 0, got {max_iter}, {overshoot}")
    if linearize_at not in ("accumulated", "overshoot"):
        raise InvalidArgumentError(f"linearize_at must be 'accumulated' or 'overshoot', got {echo(linearize_at)}")
    if oracle is not None and create_graph:
        raise InvalidArgumentError("an oracle gives no gradients; use it without create_graph")
    if trace is not None and (create_graph or targets is not None):
        raise InvalidArgumentError("a trace records untargeted runs without create_graph")
    if screen < 0 or (screen > 0 and (create_graph or getattr(model, "training", False))):
        raise InvalidArgumentError(f"screen must be >= 0 and is for eval-mode models without create_graph, "
                                   f"got {screen}")
    if trace is not None:
        trace.screen = screen
    x = x.detach()
    n = x.shape[0]

    def logits_of(point: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(point) if oracle is None else oracle(point).to(point.device)

    if clean_logits is None:
        clean_logits = logits_of(x)
    clean_logits = clean_logits.detach()
    if targets is None:
        k = min(num_candidates, clean_logits.shape[1])
        if k < 2:
            raise InvalidArgumentError(f"num_candidates must be at least 2, got {num_candidates}")
        candidates = clean_logits.topk(k, dim=1).indices
        start = candidates[:, 0]
        finished = torch.zeros(n, dtype=torch.bool, device=x.device)
    else:
        start = clean_logits.argmax(1)
        targets = targets.to(start.device)
        candidates = torch.stack([start, targets], dim=1)
        finished = start == targets

    margin = (1e-4 if bounds is not None else 0.0) if step_margin is None else step_margin

    def clip(point: torch.Tensor) -> torch.Tensor:
        return point if bounds is None else point.clamp(*bounds)

    def succeeded(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        predicted = logits.argmax(1)
        return predicted == targets[rows] if targets is not None else predicted != start[rows]

    total = torch.zeros_like(x)  # Σ r_i, unclipped
    iterations = torch.zeros(n, dtype=torch.long, device=x.device)
    active = torch.nonzero(~finished).squeeze(1)
    scale = 1.0 if linearize_at == "accumulated" else 1.0 + overshoot
    # Where the step linearises at the point the success check looks at, the step's forward answers the check.
    check_at_step_point = scale == 1.0 + overshoot
    gradient_passes = candidates.shape[1] - 1
    parked = []  # rows whose step was exactly zero: at a fixed point (see below)
    for step in range(max_iter):
        if active.numel() == 0:
            break
        point = clip(x[active] + scale * total[active])
        forward, stepping = None, None
        if step > 0:
            if check_at_step_point:
                forward = _forward(model, point, oracle)
                checked = point.detach()
                done = succeeded(forward.values, active)
            else:
                checked = clip(x[active] + (1 + overshoot) * total[active].detach())
                done = succeeded(logits_of(checked), active)
            if trace is not None:
                trace.checks.append((active, checked, done))
            finished[active[done]] = True
            if forward is not None and int(done.sum()) * gradient_passes < int((~done).sum()):
                stepping = ~done  # few finished: their backward passes cost less than a new forward for the rest
            else:
                active, point = active[~done], point[~done]
                forward = None if forward is None else _forward(model, point, values=forward.values[~done])
        if active.numel() == 0:
            break
        if forward is None:
            forward = _forward(model, point, oracle)
        info: dict[str, torch.Tensor] | None = {} if trace is not None else None
        r_step = _step(forward, candidates[active], create_graph, full_graph, eps,
                       targeted=targets is not None, margin=margin, info=info,
                       screen=(model, screen) if screen > 0 else None)
        if stepping is not None:
            active, r_step = active[stepping], r_step[stepping]
        if info is not None and trace is not None:
            keep = slice(None) if stepping is None else stepping
            trace.steps.append((active, forward.point.detach()[keep], candidates[active],
                                *(info[key][keep] for key in ("norms", "nearest", "value", "estimated", "exact"))))
        total = total.index_add(0, active, r_step) if create_graph else total.index_add_(0, active, r_step)
        iterations[active] += 1
        if step > 0 and not create_graph:  # a zero step (a tie f'_l = 0 on quantised logits) right after a check
            # leaves the point where it was, so every later check and step repeats these: the row takes its
            # remaining zero steps at once (at step 0 no check has looked at x yet: a tie there can be a success)
            still = r_step.flatten(1).abs().amax(1) == 0
            if still.any():
                parked.append(active[still])
                iterations[active[still]] = max_iter
                active = active[~still]

    active = torch.cat([active, *parked])
    if active.numel():  # the samples that used every iteration: were they fooled in the end?
        final = clip(x[active] + (1 + overshoot) * total[active].detach())
        finished[active] = succeeded(logits_of(final), active)
        if trace is not None:
            trace.checks.append((active, final, finished[active]))
    perturbation = clip(x + (1 + overshoot) * total) - x
    return DeepFoolResult(perturbation, iterations, finished, start)


def deepfool_budgets(model: nn.Module, x: torch.Tensor, budgets: Iterable[int], *, trace: DeepFoolTrace | None = None,
                     **kwargs) -> dict[int, DeepFoolResult]:
    """:func:`deepfool` at several iteration budgets (``max_iter``), exactly, for little more than the smallest.

    DeepFool is deterministic per image, so an image fooled within a smaller budget follows the same trajectory
    to the same result under a larger one; each larger budget re-attacks only the images still not fooled.
    ``trace`` records every run (the re-attacks' first steps twice). ``kwargs`` go to :func:`deepfool` (not
    ``create_graph``, ``targets`` or ``clean_logits``).
    """
    results: dict[int, DeepFoolResult] = {}
    previous: DeepFoolResult | None = None
    for budget in sorted(set(budgets)):
        if previous is None:
            previous = deepfool(model, x, max_iter=budget, trace=trace, **kwargs)
        else:
            rows = torch.nonzero(~previous.fooled).squeeze(1)
            if rows.numel():
                part = DeepFoolTrace() if trace is not None else None
                update = deepfool(model, x[rows], max_iter=budget, trace=part, **kwargs)
                if trace is not None and part is not None:
                    trace.extend(part, rows)
                merged = {f.name: getattr(previous, f.name).index_copy(0, rows, getattr(update, f.name))
                          for f in fields(previous)}
                previous = replace(previous, **merged)
        results[budget] = previous
    return results


def candidate_gradients(diffs: torch.Tensor, point: torch.Tensor, retain_graph: bool = False,
                        vectorized: bool | None = None) -> torch.Tensor:
    """``∇_point diffs[:, j]`` for every column j, as (A, K-1, ...), from one forward graph.

    ``vectorized`` (default: on CUDA) does all candidates in one batched backward (``is_grads_batched``);
    otherwise a loop of backward passes reuses the same graph. On the CPU vmap falls back to
    per-candidate kernels plus concatenation and the loop is faster (bench/deepfool.py --backward).
    """
    m = diffs.shape[1]
    if vectorized is None:
        vectorized = point.is_cuda
    if m > 1 and vectorized:
        basis = torch.eye(m, dtype=diffs.dtype, device=diffs.device).unsqueeze(1).expand(m, *diffs.shape)
        (grads,) = torch.autograd.grad(diffs, point, basis, retain_graph=retain_graph, is_grads_batched=True)
        return grads.transpose(0, 1)
    columns = [
        torch.autograd.grad(diffs[:, j].sum(), point, retain_graph=retain_graph or j < m - 1)[0]
        for j in range(m)
    ]
    return torch.stack(columns, dim=1)


@dataclass
class _Forward:
    point: torch.Tensor  # requires grad
    logits: torch.Tensor  # the model's, with their graph
    values: torch.Tensor  # the logits every decision uses: the oracle's if there is one


def _forward(model: nn.Module, point: torch.Tensor, oracle: Oracle | None = None,
             values: torch.Tensor | None = None) -> _Forward:
    """The model's forward at ``point`` with its graph; ``values`` from the oracle unless already known."""
    with torch.enable_grad():
        if not point.requires_grad:
            point = point.detach().requires_grad_(True)
        logits = model(point)
    if values is None:
        with torch.no_grad():
            values = logits.detach() if oracle is None else oracle(point.detach()).to(point.device)
    return _Forward(point, logits, values)


def _step(forward: _Forward, candidates: torch.Tensor, create_graph: bool, full_graph: bool, eps: float,
          targeted: bool = False, margin: float = 0.0, info: dict[str, torch.Tensor] | None = None,
          screen: tuple[nn.Module, float] | None = None) -> torch.Tensor:
    """One DeepFool step at ``forward.point`` for each row, toward the nearest linearised candidate boundary.

    The logit values come from ``forward.values`` (an oracle's, if given) and only the gradients from the
    model's graph in ``forward.logits``. Targeted rows (candidates ``[k̂, target]``) replace k̂ by the strongest
    non-target class at the point; a row already classified as its target there takes no step. ``info``, if
    given, receives the candidates' ``norms``, the ``nearest`` column and its ``value`` f'_l. ``screen``: the
    model and margin of :func:`deepfool`'s bfloat16 screen.
    """
    point, logits, values = forward.point, forward.logits, forward.values
    with torch.enable_grad():
        keep = None
        if targeted:
            scores = values.scatter(1, candidates[:, 1:], float("-inf"))
            candidates = torch.stack([scores.argmax(1), candidates[:, 1]], dim=1)
            keep = values.argmax(1) != candidates[:, 1]
        chosen = logits.gather(1, candidates)
        diffs = chosen[:, 1:] - chosen[:, :1]  # f'_k, (A, K-1)
        chosen_values = values.gather(1, candidates)
        value_diffs = chosen_values[:, 1:] - chosen_values[:, :1]
        estimated, exact = None, None  # set by the bfloat16 screen
        if create_graph and full_graph:
            columns = [torch.autograd.grad(diffs[:, j].sum(), point, create_graph=True)[0]
                       for j in range(diffs.shape[1])]
            all_grads = torch.stack(columns, dim=1)
            grads = all_grads.detach()
        elif screen is not None and diffs.shape[1] > 1:
            grads, estimated, exact = _screened_gradients(*screen, forward, candidates, diffs, value_diffs, eps)
        else:
            grads = candidate_gradients(diffs, point, retain_graph=create_graph).detach()
        norms = l2_norms(grads.flatten(0, 1), eps).view(grads.shape[:2])
        distances = value_diffs.abs() / norms
        if exact is not None:
            distances = distances.masked_fill(~exact, float("inf"))  # the step's gradient is always a float32 one
        nearest = distances.argmin(1)  # l, a constant for differentiation
        rows = torch.arange(point.shape[0], device=point.device)
        if info is not None:
            info.update(norms=norms.detach(), nearest=nearest, value=value_diffs[rows, nearest].detach(),
                        estimated=norms.detach() if estimated is None else estimated,
                        exact=torch.ones_like(norms, dtype=torch.bool) if exact is None else exact)
        if create_graph and full_graph:
            w, f = all_grads[rows, nearest], diffs[rows, nearest]
        elif create_graph:
            direction = torch.zeros_like(logits)
            direction[rows, candidates[rows, nearest + 1]] = 1.0
            direction[rows, candidates[:, 0]] = -1.0
            (w,) = torch.autograd.grad(logits, point, direction, create_graph=True)
            f = diffs[rows, nearest]
        else:
            w, f = grads[rows, nearest], value_diffs[rows, nearest]
        norm = l2_norms(w, eps)
        step = _expand((f.abs() / norm + margin) / norm, w) * w
        return step if keep is None else step * _expand(keep.to(step.dtype), step)


SCREEN = 0.2  # the margin ``zoo eval`` and ``zoo verify`` use: twice the largest bfloat16 error in ||w'_k|| seen
# on ResNet-20 (8.8 % over 500 CIFAR-10 test images x 9 candidates; 1.6 % on average)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 arithmetic is native on ``device`` (CPUs with AVX-512 BF16 or AMX, GPUs from Ampere on):
    where it is not, autocast emulates it and :func:`deepfool`'s screen would cost time."""
    try:
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported(including_emulation=False)
        return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError, TypeError):  # a torch without these probes: assume emulation
        return False


def screened_candidates(value_diffs: torch.Tensor, estimated_norms: torch.Tensor, margin: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The screen's rule: estimated distances ``|f'_k| / ||w'_k||`` (NaN counts as far) and which candidates get
    exact gradients (within ``1 + margin`` of the row's nearest estimate, that one always)."""
    estimated = (value_diffs.abs() / estimated_norms).nan_to_num(nan=float("inf"))
    exact = estimated <= estimated.min(1, keepdim=True).values * (1 + margin)
    exact[torch.arange(len(exact), device=exact.device), estimated.argmin(1)] = True
    return estimated, exact


def _screened_gradients(model: nn.Module, margin: float, forward: _Forward, candidates: torch.Tensor,
                        diffs: torch.Tensor, value_diffs: torch.Tensor, eps: float
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The candidates' gradients (A, K-1, ...): in the model's precision where ``exact`` (the candidates whose
    bfloat16-estimated distance is within ``1 + margin`` of the row's smallest; always the smallest), bfloat16
    estimates elsewhere; also the estimated norms."""
    point = forward.point
    low = point.detach().requires_grad_(True)
    with torch.autocast(point.device.type, dtype=torch.bfloat16):
        low_chosen = model(low).gather(1, candidates).to(point.dtype)
    grads = candidate_gradients(low_chosen[:, 1:] - low_chosen[:, :1], low).detach().to(point.dtype)
    estimated_norms = l2_norms(grads.flatten(0, 1), eps).view(grads.shape[:2])
    estimated, exact = screened_candidates(value_diffs, estimated_norms, margin)
    rows = torch.arange(len(point), device=point.device)
    order = estimated.masked_fill(~exact, float("inf")).argsort(dim=1, stable=True)  # the exact ones first
    counts = exact.sum(1)
    (grads[rows, order[:, 0]],) = torch.autograd.grad(diffs.gather(1, order[:, :1]).sum(), point)
    for rank in range(1, int(counts.max())):  # the r-th close candidate: a float32 graph of the rows having one
        more = torch.nonzero(counts > rank).squeeze(1)
        sub = point.detach()[more].requires_grad_(True)
        chosen = model(sub).gather(1, candidates[more])
        column = order[more, rank : rank + 1]
        (grads[more, column.squeeze(1)],) = torch.autograd.grad(
            (chosen.gather(1, column + 1) - chosen[:, :1]).sum(), sub)
    return grads, estimated_norms, exact
