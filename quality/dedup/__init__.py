"""Entity resolution: blocking, Fellegi–Sunter scoring trained by EM, clusters.

``quality.dedup.engine.find_matches`` works for any entity described by a YAML config in
``quality/rules/*_dedup.yaml`` (Chinese companies, persons); ``quality.dedup.prepare``
derives the columns those configs compare.
"""
