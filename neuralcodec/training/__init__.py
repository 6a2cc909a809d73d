"""Training: one loop every model family shares, and each family's trainer.

    options.py      each trainer's options (torch-free) and the registry aec train is built from
    loop.py         ranks, crops, resume, the log/evaluation/checkpoint cadence, clean stops
    hyperprior.py   the hyperprior's model (CompressAI's entropy models), loss and step
    channel_context.py  the channel-context family, warm-started from a hyperprior model
    vq.py           the VQ-VAE's initialisation, loss and step
    data.py         training crops
    distributed.py  torchrun data parallelism
"""
