import time


def main(cfg, ctx):
    ctx.metrics["value"] = 5.0
    time.sleep(600)
    return {}
