"""``zoo site OUT``: the zoo as a static web site — a leaderboard per dataset and a page per model.

Built from the same package records ``zoo list`` and the model cards read (:mod:`ddzoo.site.entries`), drawn by
matplotlib (:mod:`ddzoo.site.plots`), written from autoescaped Jinja2 templates (:mod:`ddzoo.site.render`),
and tested in headless Chromium. It opens from disk and needs no network.
"""

from ddzoo.site.build import SITE_MARKER, SiteSummary, build_site

__all__ = ["SITE_MARKER", "SiteSummary", "build_site"]
