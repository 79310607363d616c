"""asv benchmarks of spinbench: throughput, training, exact solutions and accuracy."""
