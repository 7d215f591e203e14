"""The OpenAPI document of the HTTP API is complete: every endpoint, and every schema reference resolves."""
from serve.ingress import api


def references(node) -> set[str]:
    if isinstance(node, dict):
        return {node["$ref"]} if "$ref" in node else set().union(*(references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(references(v) for v in node)) if node else set()
    return set()


def test_every_schema_reference_resolves():
    document = api.openapi()
    components = document["components"]["schemas"]
    refs = references(document)
    assert "#/components/schemas/Event" in refs and "#/components/schemas/EventBatch" in refs
    assert {ref.rsplit("/", 1)[-1] for ref in refs} <= set(components)


def test_events_body_documents_single_events_and_batches():
    body = api.openapi()["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {option["$ref"].rsplit("/", 1)[-1] for option in body["anyOf"]} == {"Event", "EventBatch"}
