def main(cfg, ctx):
    return {"value": cfg.steps * cfg.scale, "error": 0.5 if cfg.flag else 0.01}
