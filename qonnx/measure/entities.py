"""Entity-level precision, recall and F1 of tag sequences, as seqeval computes them by default
(its `get_entities`: IOB1/IOB2 and IOBES chunks read leniently, no strict scheme; micro averages
over every entity; 0 where a ratio is undefined). Written out here so qonnx needs no seqeval; the
tests hold it to seqeval's published examples and to the library where it is installed."""

END = {("B", "B"), ("B", "S"), ("B", "O"), ("I", "B"), ("I", "S"), ("I", "O")}
START = {("E", "E"), ("E", "I"), ("S", "E"), ("S", "I"), ("O", "E"), ("O", "I")}


def _split(tag: str):
    """(prefix, type) of a tag: 'B-PER' -> ('B', 'PER'), 'O' -> ('O', '_'), 'PER' -> ('P', 'ER')
    (seqeval reads the first character as the prefix)."""
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def entities(tags) -> list:
    """[(type, first, last)] of one sequence of tags, seqeval's chunks."""
    prev_tag, prev_type, begin, out = "O", "", 0, []
    for i, chunk in enumerate(list(tags) + ["O"]):
        tag, type_ = _split(chunk)
        if prev_tag in ("E", "S") or (prev_tag, tag) in END or (prev_tag not in ("O", ".") and prev_type != type_):
            out.append((prev_type, begin, i - 1))
        if tag in ("B", "S") or (prev_tag, tag) in START or (tag not in ("O", ".") and prev_type != type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return out


def scores(true, pred) -> dict:
    """Micro precision, recall and F1 over the entities of every sequence (lists of tag lists); an
    entity counts as found only with the same type, start and end."""
    if len(true) != len(pred) or any(len(a) != len(b) for a, b in zip(true, pred)):
        raise ValueError("true and predicted tag sequences differ in length")
    gold = {(s, *e) for s, tags in enumerate(true) for e in entities(tags)}
    found = {(s, *e) for s, tags in enumerate(pred) for e in entities(tags)}
    hit = len(gold & found)
    precision = hit / len(found) if found else 0.0
    recall = hit / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "entities": len(gold)}
