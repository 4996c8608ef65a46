"""The residual diffusion model of the probabilistic downscaling (Wan et al., NeurIPS 2023, arXiv 2305.15618):
schedule and preconditioning, masked denoising loss and training step, samplers with the hard projection.
See docs/probabilistic.md §3–4."""
