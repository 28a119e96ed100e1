"""Client (tritonclient venv): tritonclient's own message definitions, as
{message: {field: [number, type, repeated]}}, to compare with pyonnx's wire format."""
import json

from tritonclient.grpc import model_config_pb2, service_pb2

out = {}
for module in (service_pb2, model_config_pb2):
    pending = list(module.DESCRIPTOR.message_types_by_name.values())
    while pending:
        m = pending.pop()
        pending.extend(m.nested_types)
        out[m.full_name.split(".", 1)[1]] = {
            f.name: [f.number, f.type, f.label == f.LABEL_REPEATED] for f in m.fields}
print(json.dumps(out))
