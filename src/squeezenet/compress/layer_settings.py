"""Per-layer settings: the one resolver of layer names for every Deep Compression stage.

A setting is one value for every weight layer or a mapping by layer name. Names are module names
(``features.0``) or the paper's (``conv1``, ``fire2/squeeze1x1``, ``fire2/expand3x3``, ``conv10``;
AlexNet ``conv1``-``conv5``, ``fc6``-``fc8``); a prefix such as ``fire2`` names all of a Fire
module's layers, and ``"default"`` every layer named by nothing else. Table 2 states its settings
by role instead (``values_by_role``: first layer, hidden convolutions, hidden fc layers, last).
"""

from __future__ import annotations

from torch import nn

from squeezenet.models import Fire, weight_layers

__all__ = ["layer_aliases", "parse_layer_values", "resolve_layer_values", "value_for", "values_by_role"]


def layer_aliases(model: nn.Module) -> dict[str, str]:
    """Paper name of every weight layer, keyed by module name (``features.0`` -> ``conv1``)."""
    family = getattr(getattr(model, "spec", None), "family", None)
    fires = {name: index + 2 for index, (name, _) in enumerate((n, m) for n, m in model.named_modules() if isinstance(m, Fire))}
    suffixes = {"squeeze": "squeeze1x1", "expand1x1": "expand1x1", "expand3x3": "expand3x3", "bypass": "bypass"}
    aliases = {}
    convs = linears = 0
    for name, module in weight_layers(model):
        parent, _, child = name.rpartition(".")
        if parent in fires and child in suffixes:
            aliases[name] = f"fire{fires[parent]}/{suffixes[child]}"
        elif isinstance(module, nn.Conv2d):
            convs += 1
            # SqueezeNet's classifier convolution is conv10 in the paper, whatever the Fire count.
            aliases[name] = "conv10" if family == "squeezenet" and name.startswith("classifier") else f"conv{convs}"
        else:
            linears += 1
            aliases[name] = f"fc{5 + linears}" if family == "alexnet" else f"fc{linears}"
    return aliases


def parse_layer_values(text: str, cast=float) -> float | dict[str, float]:
    """``"6"`` -> 6; ``"conv1=8,fire9=7,default=6"`` -> {"conv1": 8, "fire9": 7, "default": 6}."""
    text = text.strip()
    if not text:
        raise ValueError("empty per-layer setting")
    if "=" not in text:
        return _cast(cast, text, text)
    values = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"bad per-layer setting {item!r}; expected NAME=VALUE (e.g. conv1=8,default=6)")
        values[key.strip()] = _cast(cast, value.strip(), item)
    return values


def resolve_layer_values(model: nn.Module, values, cast=float, what: str = "value"):
    """Map paper names and prefixes to module names; a plain number is returned as is.

    An exact name beats a prefix; a layer matched by nothing takes ``"default"`` (or is left out).
    """
    if not isinstance(values, dict):
        return cast(values)
    aliases = layer_aliases(model)
    resolved = {}
    used = set()
    for name, alias in aliases.items():
        for key in (name, alias):
            if key in values:
                resolved[name] = cast(values[key])
                used.add(key)
                break
        else:
            prefixes = [key for key in values if key != "default" and (alias.startswith(key + "/") or name.startswith(key + "."))]
            if prefixes:
                key = max(prefixes, key=len)
                resolved[name] = cast(values[key])
                used.add(key)
    unknown = sorted(set(values) - used - {"default"})
    if unknown:
        raise ValueError(f"no weight layer named {', '.join(unknown)} for {what}; layers are "
                         f"{', '.join(aliases.values())}")
    if "default" in values:
        resolved["default"] = cast(values["default"])
    return resolved


def value_for(resolved, name: str, fallback=None):
    """One layer's value from ``resolve_layer_values``' answer: its own, else ``"default"``, else ``fallback``."""
    if isinstance(resolved, dict):
        return resolved.get(name, resolved.get("default", fallback))
    return resolved


def values_by_role(model: nn.Module, roles: tuple) -> dict:
    """One value per weight layer by its role, ``roles = (first, hidden_conv, hidden_linear, last)``:
    Han et al. prune and quantize the first layer, the last, and the conv and fc layers between differently."""
    first, hidden_conv, hidden_linear, last = roles
    layers = weight_layers(model)
    settings = {}
    for index, (name, module) in enumerate(layers):
        if index == 0:
            settings[name] = first
        elif index == len(layers) - 1:
            settings[name] = last
        else:
            settings[name] = hidden_linear if isinstance(module, nn.Linear) else hidden_conv
    return settings


def _cast(cast, value: str, item: str):
    try:
        return cast(value)
    except ValueError:
        raise ValueError(f"bad value in per-layer setting {item!r}") from None
