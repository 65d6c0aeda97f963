"""Data quality: Great Expectations gates, domain checks, entity resolution, survivorship."""
