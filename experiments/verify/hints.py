"""Where to look when a comparison of the parity ladder fails, found from the structure of the spec, never from
fragments of the quantity's name.

A failing row's quantity is acted on by some components of the spec (components_at): a forward output by the layers
up to it (a backend's own initial draw, forward/init/..., by the initializer), a gradient by the whole model and the
loss, a level-3 step by that case's optimizer and clipping, a trajectory by all of them. The hint names the entries of the differences catalog (experiments.catalog.differences)
of those components at the row's level, for the frameworks on either side of the pair only. Where the backend builds
the component from its framework's own API (implementation native) the entry is a known built-in difference; where
it implements the catalog formula (implementation catalog, or the component kept on the catalog) a failing row is a
defect of a backend, and the entries only say what a framework's built-in would do differently there: a place to
look, not a verdict.

A forward row (a gradient of a batch norm's parameters) also gets the layer's own layout or default note, from the
plan's layer kind: the flatten order, SAME padding, framework defaults that differ from the spec's value. A step or
trajectory failure that nothing matches is labelled unexplained, with conditioning named as one possible cause to
check, never as a verdict.
"""

from experiments.catalog.differences import Difference, differences_for
from experiments.spec import plan_of
from experiments.spec import plan as P
from experiments.spec.plan import same_padding
from experiments.verify.cases import LEVEL3_OPTIMIZERS
from experiments.verify.initial import INIT_PREFIX

FLATTEN_ORDER = "flatten order: torch flattens (C, H, W), Keras and Flax (H, W, C); MMdnn#595, nn-transfer#16"
SAME_POOLING = "SAME pooling puts the odd padding pixel at the end (tensorflow#7969; torch pads both sides alike)"
FLAX_POOL_STRIDES = "Flax max_pool strides default to 1, not the window size"
CONV_PADDING = "padding: Flax Conv defaults to SAME, torch and Keras to valid (flax#2993); `mnist-parity defaults conv2d`"
BATCH_NORM_DEFAULTS = ("BatchNorm epsilon (torch 1e-5, Keras 1e-3) or momentum convention (torch's is 1 - m) left at a "
                       "framework default; `mnist-parity defaults batch_norm`")
BATCH_NORM_TRAIN_VARIANCE = "train-mode BatchNorm normalises with the biased batch variance (and the spec's epsilon)"
LIST_DIFFERENCES = "`mnist-parity list differences`"
CATALOG_HERE = ("every backend implements the catalog formula here, so one backend's code is at fault; places to look, "
                "where a framework's built-in would differ here")

CONDITIONING = (
    "unexplained; one possible cause to check: adaptive optimizers divide each gradient element by its own running "
    "magnitude, so rounding in near-zero gradient elements (e.g. a bias feeding a batch norm, whose true gradient "
    "is 0) can become a step-sized difference; if the gradients level passes, compare with a larger epsilon"
)


def components_at(spec, level: str, quantity: str | None = None) -> list[str]:
    """The components that can act on `quantity` of `level` in this spec's model, named as catalog_components
    entries ("activation:<entry>", "batch_norm", "pooling", "dropout", "loss", "optimizer", "clipping", "schedule",
    "initializer"); quantity None: on any quantity of the level.

    forward/init/<parameter> (a backend's own initial draw): the initializer; forward/<layer>: that layer's and every
    earlier layer's activations, batch norm and pooling; gradients: those of the whole model, dropout and the loss;
    step: the optimizer and clipping (when the spec clips); trajectory: all of these and the schedule."""
    if level == "forward" and quantity and quantity.startswith(INIT_PREFIX):
        return ["initializer"]
    clipping = ["clipping"] if spec.optimizer.clip_global_norm is not None else []
    if level == "step":
        return ["optimizer", *clipping]
    plan = plan_of(spec)
    names = [layer.name for layer in plan]
    if level == "forward" and quantity in names:
        plan = plan[:names.index(quantity) + 1]
    found = [f"activation:{layer.activation.name}" for layer in plan if isinstance(layer, P.Activation)]
    found += ["batch_norm"] * any(isinstance(layer, P.BatchNormalization) for layer in plan)
    found += ["pooling"] * any(isinstance(layer, P.MaxPool2D) for layer in plan)
    if level != "forward":
        found += ["dropout"] * any(isinstance(layer, P.Dropout) for layer in plan)
        found.append("loss")
    if level == "trajectory":
        found += ["optimizer", *clipping, "schedule"]
    return list(dict.fromkeys(found))


def entry_of(component: str, spec, level: str = "", quantity: str = "") -> str | None:
    """The catalog entry a component concerns for a quantity: the activation's name, the level-3 case's optimizer
    (step/<case>/...; the spec's own elsewhere), the spec's loss or schedule, the initializer of the layer's kernel or
    bias (init/<layer>/<kernel or bias>); None for a component without entries."""
    kind, _, entry = component.partition(":")
    if entry:
        return entry
    if kind == "optimizer":
        case = quantity.split("/")[0] if level == "step" else ""
        return LEVEL3_OPTIMIZERS.get(case, {}).get("name", spec.optimizer.name)
    if kind == "loss":
        return spec.loss.name
    if kind == "schedule":
        return spec.schedule.name
    if kind == "initializer" and quantity.startswith(INIT_PREFIX):
        _, layer_name, key = (quantity.split("/") + ["", ""])[:3]
        layer = next((layer for layer in plan_of(spec) if layer.name == layer_name), None)
        entry = getattr(layer, f"{key}_init", None)
        return entry.name if entry is not None else None
    return None


def differences_at(spec, level: str, quantity: str, frameworks) -> list[tuple[str, Difference, bool]]:
    """(framework, difference, whether the backend builds that component from its framework's API here) for every
    differences entry of `frameworks` whose component can act on the quantity and which shows at `level`."""
    found = {}
    for framework in dict.fromkeys(frameworks):
        for component in components_at(spec, level, quantity):
            kind = component.partition(":")[0]
            entry = entry_of(component, spec, level, quantity)
            for difference in differences_for(framework, kind, entry):
                if level in difference.levels:
                    found.setdefault((framework, difference.id), (framework, difference, spec.uses_native(kind, entry)))
    return list(found.values())


def layout_notes(spec, level: str, quantity: str, pair: tuple[str, str]) -> list[str]:
    """Notes on where a backend typically lays a layer out or leaves a framework default in place, from the kind of
    the plan's layer the quantity belongs to (a framework-specific one only when that framework is a side)."""
    plan = plan_of(spec)
    index = {layer.name: i for i, layer in enumerate(plan)}
    if level == "gradients":
        owner = plan[index[quantity.split("/")[0]]] if quantity.split("/")[0] in index else None
        return [BATCH_NORM_TRAIN_VARIANCE] if isinstance(owner, P.BatchNormalization) else []
    if level != "forward" or quantity not in index:
        return []
    layer = plan[index[quantity]]
    before = plan[index[quantity] - 1] if index[quantity] else None
    if isinstance(layer, P.Flatten) and _reorders(layer):
        return [FLATTEN_ORDER]
    if isinstance(layer, P.Dense) and isinstance(before, P.Flatten) and _reorders(before) and "torch" in pair:
        return [FLATTEN_ORDER]
    if isinstance(layer, P.MaxPool2D):
        pads = layer.padding == "same" and any(
            sum(same_padding(size, layer.size, layer.stride)) % 2 for size in layer.input_shape[:2])
        return [SAME_POOLING] * pads + [FLAX_POOL_STRIDES] * ("jax" in pair)
    if isinstance(layer, P.Conv2D):
        return [CONV_PADDING]
    if isinstance(layer, P.BatchNormalization):
        return [BATCH_NORM_DEFAULTS]
    if isinstance(layer, P.Activation) and set(type(layer.activation).model_fields) - {"name"}:
        name = layer.activation.name
        return [f"{name}'s hyperparameters left at a framework default instead of the spec's; `mnist-parity defaults {name}`"]
    return []


def _reorders(flatten: P.Flatten) -> bool:
    """Whether channels-first and channels-last flattening of this input give different orders."""
    return len(flatten.input_shape) == 3 and flatten.input_shape[-1] > 1 and flatten.input_shape[0] * flatten.input_shape[1] > 1


def _named(found: list[tuple[str, Difference, bool]]) -> str:
    return ", ".join(f"{difference.id} ({framework})" for framework, difference, _ in found)


def hint_for(row, spec=None) -> str:
    """What to look at for a failing ladder row (experiments.verify.ladder.Row: level, first, second, quantity) of
    this spec: the layer's layout notes, then the differences catalog's entries for the components acting on it and
    the frameworks of the pair; else (steps and trajectories) the labelled-unexplained conditioning note. Without a
    spec only that note."""
    parts = []
    if spec is not None:
        pair = (row.first, row.second)
        parts = layout_notes(spec, row.level, row.quantity, pair)
        found = differences_at(spec, row.level, row.quantity, pair)
        native = [item for item in found if item[2]]
        catalog = [item for item in found if not item[2]]
        if native:
            parts.append(f"known built-in differences here: {_named(native)}")
        if catalog:
            parts.append(f"{CATALOG_HERE}: {_named(catalog)}")
        if found:
            parts.append(LIST_DIFFERENCES)
    if not parts and row.level in ("step", "trajectory"):
        return CONDITIONING
    return "; ".join(parts)
