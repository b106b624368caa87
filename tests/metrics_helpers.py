"""Reading GET /metrics in tests: samples by (name, labels), and the difference between two scrapes."""

from prometheus_client.parser import text_string_to_metric_families


def parse(text):
    """{(sample name, frozenset of label items): value} of a Prometheus text exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    """One sample's value (0.0 when absent: a labelled counter appears on its first increment)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def histogram_count(samples, name):
    """Observations of an unlabelled histogram."""
    return value(samples, f"{name}_count")
