//go:build mage

// Build and publish Determined's environment images (Python, TensorFlow,
// PyTorch, DeepSpeed, Horovod, Jupyter) for CPU, CUDA and ROCm with
// `docker buildx build`. DRY_RUN=1 prints every command instead of running it.
package main

import (
	//mage:import
	_ "github.com/determined-ai/environments/magefiles/targets"
)
