"""Command-line tools around lga's training core: block and classifier benchmarks, ONNX export,
a torch.compile benchmark, the tune-then-compare protocol, and a local SLURM cluster
(``python -m lga.tools.<name>``)."""
