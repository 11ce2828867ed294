"""One composite PTransform per pipeline stage; `pipelines/` wires them."""
