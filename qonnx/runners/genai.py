"""Rows of onnxruntime-genai builds: perplexity and next-token predictions through ONNX Runtime
on the folder's model.onnx (the same method and code as every other ONNX row), generation
through onnxruntime-genai's Generator (what users deploy), at the same thread count.

Generation: greedy, the prompt appended at once; TTFT = append_tokens (the prompt pass) plus the
first generate_next_token; decode = the remaining tokens. The end-of-sequence id is overlaid
with one no token has, so the Generator decodes exactly as many tokens as the other rows' loop,
which does not stop at end-of-sequence either (min_length would mask that token instead and
change the greedy choice).
"""
import json
import time
from pathlib import Path

from qonnx.measure import memory
from qonnx.runners.ort import OrtRunner

NO_TOKEN = 2**31 - 1  # an end-of-sequence id that no vocabulary has


def side_files(folder) -> list:
    """The files of a genai folder besides its graph and qonnx's records: genai_config.json and the
    tokenizer's, which a folder with another model.onnx needs to run in the Generator."""
    return [f for f in Path(folder).iterdir() if f.is_file() and not f.name.startswith("model.onnx")
            and f.name not in ("manifest.json", "builder.log")]


class GenaiRunner(OrtRunner):
    decode_loop = "onnxruntime-genai's Generator (its own search and in-place KV buffers)"

    def __init__(self, path, provider="cpu", threads=None, config=None):
        super().__init__(path, provider, threads, config)
        self.folder = Path(path).parent
        self.name = "onnxruntime-genai"
        self.model = None

    def import_runtime(self):
        super().import_runtime()
        import onnxruntime_genai  # noqa: F401

    def load_generator(self):
        """Release the ONNX Runtime session (perplexity is done) and load the Generator's model, so
        the row's peak memory holds one copy of the weights, not two."""
        import onnxruntime_genai as og

        self.sess = None
        memory.release_freed()  # the session's arena goes back before the Generator's weights arrive
        t0 = time.perf_counter()
        config = og.Config(str(self.folder))
        session = {"intra_op_num_threads": int(self.threads)} if self.threads else {}
        config.overlay(json.dumps({"model": {"eos_token_id": NO_TOKEN, "decoder": {"session_options": session}}}))
        self.model = og.Model(config)
        self.generator_load_s = time.perf_counter() - t0

    def generate(self, ids, new_tokens):
        """(ttft seconds, decode seconds, generated ids), timed like lm.generate."""
        import onnxruntime_genai as og

        if self.model is None:
            self.load_generator()
        ids = [int(i) for i in ids]
        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=len(ids) + new_tokens)
        gen = og.Generator(self.model, params)
        t0 = time.perf_counter()
        gen.append_tokens(ids)
        gen.generate_next_token()
        out = [int(gen.get_next_tokens()[0])]
        ttft = time.perf_counter() - t0
        t1 = time.perf_counter()
        while not gen.is_done() and len(out) < new_tokens:
            gen.generate_next_token()
            out.append(int(gen.get_next_tokens()[0]))
        return ttft, time.perf_counter() - t1, out

    def close(self):
        self.model = None
        super().close()
