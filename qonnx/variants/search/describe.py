"""One sentence for the record a budgeted build keeps (settings.budget_search): what the budget
was, what the search reached and what it kept at higher precision. Pure: no I/O, no imports."""


def describe(search: dict) -> str:
    """The perplexity budget's record (lm_budget) or the accuracy budget's (budget), in one line."""
    if "max_perplexity_increase_pct" in search["budget"]:
        units = {}
        for u, f in search["chosen_formats"].items():
            units.setdefault(f, []).append(u)
        cpu = search.get("cpu") or {}
        return (f"{_checked(search)} after {len(search['steps'])} step(s); units by format: "
                f"{'; '.join(f'{f}: {len(us)} ({_short(us)})' for f, us in units.items())}; MatMuls predicted at "
                f"{_speed(search)} on {cpu.get('model')} ({', '.join(cpu.get('flags') or ()) or 'no listed flags'})"
                f"{_step(search.get('step_check'))}")
    kept = ", ".join(search["kept_fp32"]) or "none"
    if search.get("calibration"):
        c = search["calibration"]
        kept += f"; calibration {c['method']}, per-{'channel' if c['per_channel'] else 'tensor'} weights"
    elif search.get("weights") == "mixed":
        kept += f"; per-channel weights in {', '.join(search['per_channel_units'])}, per-tensor elsewhere"
    elif search.get("weights"):
        kept += f"; {search['weights']} weights"
    return (f"budget {search['budget']['max_accuracy_drop']}: drop {search['accuracy_drop']:+.4f} on "
            f"{search['validation_rows']} validation rows with {len(search['kept_fp32'])} unit(s) kept FP32 "
            f"({kept}) after {len(search['steps'])} step(s)")


def budget_note(data) -> str:
    """'' unless manifest data is an LM budget build: then, for its row, the budget and what the
    search measured on the validation text (the row's own perplexity is on the eval text, another
    sample: a budget met on one can be missed on the other by about the standard error said)."""
    search = (data.get("settings") or {}).get("budget_search") or {}
    if "max_perplexity_increase_pct" not in search.get("budget", {}) or "increase_pct" not in search:
        return ""
    slow = slower(search.get("step_check"))
    return f"{_checked(search)} (the search's check; this row's perplexity is on the eval text){'; ' + slow if slow else ''}"


def slower(check) -> str:
    """'' unless the search's decode step check (steptime.check) timed the chosen build slower, in
    the median of its rounds, than the same graph in genai-int4's format or in genai-int8's (the
    more accurate one): then what it measured, for the search's log and the row's note."""
    if not check or "skipped" in check:
        return ""
    ratios = {"genai-int4's format": check["chosen_vs_int4_format"]["median"],
              "genai-int8's, which loses less": check["chosen_vs_int8_format"]["median"]}
    slow = [f"{r:.2f}x the same graph in {name}" for name, r in ratios.items() if r < 1]
    return f"slower in the search's decode step check on this CPU: {' and '.join(slow)}" if slow else ""


def _checked(search) -> str:
    """The LM budget and what the search's check on the validation text found."""
    budget = search["budget"]
    return (f"budget +{budget['max_perplexity_increase_pct']} %{held(budget.get('margin_se'))}"
            f"{' (no margin: ' + budget['no_margin'] + ')' if budget.get('no_margin') else ''}: perplexity "
            f"{search['increase_pct']:+.2f} %{se(search, search.get('spread_block_tokens'))} on "
            f"{search['validation_tokens']} validation tokens")


def held(margin_se) -> str:
    """' held by K standard error(s)' where the budget has a margin (--perplexity-margin-se), else ''."""
    return f" held by {margin_se:g} standard error(s)" if margin_se else ""


def se(step, block) -> str:
    """The standard error of a step's increase from its blocks' spread (lm_rank.spread), where the
    search recorded one (searches since commit 9a01739) and the text held more than one block."""
    if step.get("increase_se_pct") is None:
        return ""
    return (f" (standard error {step['increase_se_pct']:.2f} points over {len(step['block_increases_pct'])} blocks of "
            f"{block}+ tokens)")


def _speed(search) -> str:
    """The predicted speed against the anchor (searches before SEARCH 5 said it against all
    4-bit/32 with zero points, and had no ceiling)."""
    if "predicted_speed_vs_anchor" not in search:
        return f"{search['predicted_speed_vs_4bit32']:.2f}x all 4-bit/32"
    return (f"{search['predicted_speed_vs_anchor']:.2f}x genai-int4's {search['anchor']} (at most "
            f"{search['ceiling_vs_anchor']:.2f}x with these formats)")


def _step(check) -> str:
    """The measured decode step (steptime.check), where the search timed one (SEARCH 6 on)."""
    if not check:
        return ""
    if "skipped" in check:
        return f"; decode step not timed ({check['skipped']})"
    a, b = check["chosen_vs_int4_format"], check["chosen_vs_int8_format"]
    return (f"; a decode step measured at {a['median']:.2f}x ({a['range'][0]:.2f}-{a['range'][1]:.2f}) the graph in "
            f"genai-int4's format and {b['median']:.2f}x ({b['range'][0]:.2f}-{b['range'][1]:.2f}) in genai-int8's, "
            f"{check['rounds']} interleaved rounds in {check.get('runtime', 'onnxruntime')}")


def _short(names, most=4) -> str:
    return ", ".join(names[:most]) + (f" +{len(names) - most}" if len(names) > most else "")
