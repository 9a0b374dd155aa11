"""Before the edge: will an artifact run on a target runtime, within its budget?

One module per target (wasm, ort_mobile, partition for nnapi and coreml, qnn), shapes for
--fix-shapes, model for what every target reads (the graph's facts, the inputs, the CPU EP's
answers), result for a target's verdict, gate for the whole check (qonnx validate ARTIFACT)."""
