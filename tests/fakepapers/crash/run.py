def main(cfg, ctx):
    ctx.metrics["value"] = 2.0  # measured before the crash: kept, but decides nothing
    raise RuntimeError("deliberate failure in fake-crash")
