"""Settings declared once: a frozen dataclass whose fields carry their ROS parameter's metadata.

    @dataclass(frozen=True)
    class CameraSettings:
        rate: float = setting(15.0, "Frames per second", range=(0.1, 240.0))

    SPECS = specs_of(CameraSettings)                 # one ParamSpec per field, in order
    node.declare_parameter(spec.name, spec.default, descriptor(spec))
    settings = settings_of(CameraSettings, SPECS, values)     # typed and checked, ValueError naming all
    markdown_table(SPECS)                             # the docs table

Each field's metadata (description, choices, numeric range, live or fixed at start-up, an extra
check) is the one source of the ROS descriptor, the validation of values and the docs table. The
matting node's parameters (:mod:`.params`) and the fake camera's (:mod:`.camera_settings`) are
declared this way. Pure apart from building ``rcl_interfaces`` descriptors.
"""
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple, Type, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from matte_ros.core.settings import is_real

__all__ = ["setting", "ParamSpec", "specs_of", "type_name", "descriptor", "value_problem", "settings_of",
           "yaml_value", "accepted", "markdown_table"]

T = TypeVar("T")


def setting(default: Any, description: str, *, choices=(), range: Optional[Tuple[float, float]] = None,
            live: bool = False, check: Optional[Callable[[Any], Optional[str]]] = None, accepted: str = "") -> Any:
    """A settings field: ``range`` inclusive numeric bounds (also the ROS descriptor's range),
    ``check`` returns why a value is unacceptable (None if fine) and is then the field's whole
    validation (choices and range only describe the values to ROS and in the docs), ``accepted``
    describes the valid values in the docs table when choices and range do not say it all."""
    return field(default=default, metadata={"description": description, "choices": tuple(choices), "range": range,
                                            "live": live, "check": check, "accepted": accepted})


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as ROS declares it (``default`` as ROS types it: a list for an array)."""
    name: str
    default: Any
    description: str
    choices: Tuple[str, ...] = ()
    range: Optional[Tuple[float, float]] = None
    live: bool = False
    check: Optional[Callable[[Any], Optional[str]]] = None
    accepted: str = ""


def _spec(f: dataclasses.Field) -> ParamSpec:
    m = f.metadata
    default = list(f.default) if isinstance(f.default, tuple) else f.default
    return ParamSpec(f.name, default, m["description"], m["choices"], m["range"], m["live"], m["check"],
                     m["accepted"])


def specs_of(cls: type) -> Tuple[ParamSpec, ...]:
    """The parameters declared by the fields of the settings dataclass ``cls``, in order."""
    return tuple(_spec(f) for f in dataclasses.fields(cls))


def type_name(spec: ParamSpec) -> str:
    """The ROS type of the parameter, as the docs table names it."""
    d = spec.default
    if isinstance(d, bool):
        return "bool"
    if isinstance(d, int):
        return "integer"
    if isinstance(d, float):
        return "double"
    if isinstance(d, list):
        return f"integer[{len(d)}]"
    return "string"


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of ``spec``: description, read_only unless live, choices as constraints
    text, numeric range."""
    d = ParameterDescriptor(description=spec.description, read_only=not spec.live)
    constraints = []
    if spec.choices:
        constraints.append("one of: " + ", ".join(repr(c) for c in spec.choices))
    elif spec.accepted:
        constraints.append(spec.accepted)
    if not spec.live:
        constraints.append("fixed at start-up")
    d.additional_constraints = "; ".join(constraints)
    if spec.range is not None:
        lo, hi = spec.range
        if type_name(spec) == "integer":
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


def _type_problem(spec: ParamSpec, value: Any) -> Optional[str]:
    kind = type_name(spec)
    ok = {"bool": lambda v: isinstance(v, bool), "string": lambda v: isinstance(v, str),
          "integer": lambda v: isinstance(v, int) and not isinstance(v, bool), "double": is_real}.get(kind)
    if ok is not None and not ok(value):
        return f"{spec.name} must be {'an' if kind == 'integer' else 'a'} {kind}, got {value!r}"
    return None


def value_problem(spec: ParamSpec, value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable for ``spec``, or None: its check when it has one, else its
    type, choices and range."""
    if spec.check is not None:
        return spec.check(value)
    problem = _type_problem(spec, value)
    if problem is not None:
        return problem
    if spec.choices and value not in spec.choices:
        return f"{spec.name} must be one of {', '.join(repr(c) for c in spec.choices)}, got {value!r}"
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        return f"{spec.name} must be in [{spec.range[0]}, {spec.range[1]}], got {value!r}"
    return None


def _typed(spec: ParamSpec, value: Any) -> Any:
    return tuple(int(v) for v in value) if isinstance(spec.default, list) else type(spec.default)(value)


def settings_of(cls: Type[T], specs: Iterable[ParamSpec], values: Mapping[str, Any]) -> T:
    """``cls`` (the settings dataclass ``specs`` were declared by) from parameter values, typed;
    missing names take their defaults. Raises ValueError naming every unacceptable value."""
    specs = tuple(specs)
    merged = {p.name: values.get(p.name, p.default) for p in specs}
    reasons: List[str] = [r for r in (value_problem(p, merged[p.name]) for p in specs) if r is not None]
    reasons += [f"unknown parameter {n!r}" for n in sorted(set(values) - set(merged))]
    if reasons:
        raise ValueError("invalid parameters: " + "; ".join(reasons))
    return cls(**{p.name: _typed(p, merged[p.name]) for p in specs})


def yaml_value(value: Any) -> str:
    """``value`` as a YAML (and docs) literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return repr(value)


def accepted(spec: ParamSpec) -> str:
    """The accepted values in words: the choices, the ``accepted`` text or the range ('' when any)."""
    if spec.choices:
        return ", ".join(repr(c) for c in spec.choices)
    if spec.accepted:
        return spec.accepted
    if spec.range is not None:
        return f"{spec.range[0]} ... {spec.range[1]}"
    return ""


def markdown_table(specs: Iterable[ParamSpec]) -> str:
    """The parameter table of ``specs`` for the docs (GitHub markdown)."""
    rows = ["| Parameter | Type | Default | Accepted | Changes | Description |",
            "|---|---|---|---|---|---|"]
    for spec in specs:
        cells = [f"`{spec.name}`", type_name(spec), f"`{yaml_value(spec.default)}`", accepted(spec) or "any",
                 "live" if spec.live else "start-up", spec.description.replace("<", "&lt;")]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
