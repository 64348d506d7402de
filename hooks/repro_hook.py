"""MkDocs hook: forwards build events to ``repro.site``, where the logic and its tests live."""

from repro import site


def on_config(config):
    return site.on_config(config)


def on_files(files, config):
    return site.on_files(files, config)


def on_page_markdown(markdown, page, config, files):
    return site.on_page_markdown(markdown, page, config, files)


def on_post_build(config):
    return site.on_post_build(config)


def on_page_content(html, page, config, files):
    return site.on_page_content(html, page, config, files)


def on_nav(nav, config, files):
    return site.on_nav(nav, config, files)
