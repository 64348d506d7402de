def main(cfg, ctx):
    # one value per seed: a finding is judged on the interval over seeds
    ctx.metrics["value"] = [cfg.steps * cfg.scale + 0.01 * i for i in range(cfg.seeds)]
    ctx.metrics["error"] = 0.5 if cfg.flag else 0.01
