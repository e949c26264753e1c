#!/usr/bin/env python3
"""Checks deploy/grafana/durable-streams.json against deploy/prometheus/rules.yml (stdlib only).

The dashboard must parse as JSON, take its data source from the DS_PROMETHEUS input/variable,
have an `instance` variable, unique panel ids, panels inside the 24-column grid that do not
overlap, and PromQL whose every metric name is either a recording rule defined in rules.yml or a
raw `ds_` metric. The rules it is built on must all appear.

Usage: dashboard-check.py RULES.yml DASHBOARD.json
"""
import json
import re
import sys

# Rules the dashboard is there to show; each must be used by some panel.
REQUIRED_RULES = [
    "ds_edge:hit_ratio:rate5m", "ds_edge_fleet:hit_ratio:rate5m",
    "ds_edge:request_offload:rate5m", "ds_edge_fleet:request_offload:rate5m",
    "ds_edge:byte_offload:rate5m", "ds_edge_fleet:byte_offload:rate5m",
    "ds_edge:long_poll_collapse_ratio:rate5m", "ds_edge:sse_fanout_ratio",
    "ds_edge:requests:rate5m", "ds_edge:upstream_requests:rate5m",
    "ds_edge:upstream_latency_seconds:p50_5m", "ds_edge:upstream_latency_seconds:p99_5m",
    "ds_edge:upstream_errors:rate5m", "ds_edge:upstream_error_ratio:rate5m",
    "ds_edge:cache_evictions:rate5m",
]
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2"}
DATASOURCE_UID = "${DS_PROMETHEUS}"


def recording_rules(path):
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r"^\s*-\s*record:\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*$", f.read(), re.M))


def metric_names(expr):
    """The metric names a PromQL expression selects (functions, keywords, labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = []
    for match in re.finditer(r"(?<![\w.:$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        if word.lower() in KEYWORDS or re.match(r"\s*\(", text[match.end():]):
            continue
        names.append(word)
    return names


def main():
    rules_path, dashboard_path = sys.argv[1], sys.argv[2]
    rules = recording_rules(rules_path)
    problems = []
    try:
        with open(dashboard_path, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as error:
        print(f"dashboard-check: {dashboard_path}: {error}")
        return 1

    if not any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus" for i in dashboard.get("__inputs", [])):
        problems.append("no DS_PROMETHEUS prometheus input in __inputs")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource":
        problems.append("no DS_PROMETHEUS data source variable")
    if variables.get("instance", {}).get("type") != "query":
        problems.append("no instance query variable")
    for key in ("title", "uid", "schemaVersion", "panels"):
        if key not in dashboard:
            problems.append(f"no {key}")

    ids, boxes, used = set(), [], set()
    exprs = 0
    for panel in dashboard.get("panels", []):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            problems.append(f"{title}: panel id {panel.get('id')} used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        x, y, w, h = (grid.get(k) for k in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) for v in (x, y, w, h)) or x < 0 or w <= 0 or h <= 0 or x + w > 24:
            problems.append(f"{title}: bad gridPos {grid}")
        else:
            for other_title, (ox, oy, ow, oh) in boxes:
                if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                    problems.append(f"{title}: overlaps {other_title}")
            boxes.append((title, (x, y, w, h)))
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != DATASOURCE_UID:
            problems.append(f"{title}: data source is not {DATASOURCE_UID}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{title}: no queries")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            problems.append(f"{title}: refId used twice")
        for t in targets:
            if t.get("datasource", {}).get("uid") != DATASOURCE_UID:
                problems.append(f"{title}/{t.get('refId')}: data source is not {DATASOURCE_UID}")
            expr = t.get("expr", "")
            if not expr.strip():
                problems.append(f"{title}/{t.get('refId')}: empty expr")
                continue
            exprs += 1
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                problems.append(f"{title}: unbalanced brackets in {expr!r}")
            names = metric_names(expr)
            if not names:
                problems.append(f"{title}: no metric in {expr!r}")
            for name in names:
                if ":" in name:
                    if name not in rules:
                        problems.append(f"{title}: {name} is not a recording rule in {rules_path}")
                elif not re.fullmatch(r"ds_[a-z0-9_]+", name):
                    problems.append(f"{title}: {name} is neither a recording rule nor a ds_ metric")
                used.add(name)
    for name in REQUIRED_RULES:
        if name not in rules:
            problems.append(f"{name} is not defined in {rules_path}")
        elif name not in used:
            problems.append(f"no panel shows {name}")

    if problems:
        for problem in problems:
            print(f"dashboard-check: {problem}")
        return 1
    panels = sum(1 for p in dashboard["panels"] if p.get("type") != "row")
    print(f"dashboard-check: ok ({panels} panels, {exprs} queries, {len(used & rules)} of {len(rules)} recording rules used)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
