"""The training methods, one readable file each.

Each method module has ``train(experiment, run, resume=None) -> Result`` and
``build_networks(experiment, obs_space, action_space) -> nn.Module``, whose ``predict(obs,
deterministic)`` gives actions. Its config class in ``mentor.experiment.methods`` registers it
(``module`` names the file); ``mentor.experiment.method_module(name)`` imports it.
"""
