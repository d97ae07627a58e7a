"""A minimal CRI v1 client for tests/containerd.rs.

usage: cri.py SOCKET METHOD [REQUEST_JSON]

Calls runtime.v1.RuntimeService/METHOD on the unix socket with the request
given as JSON (proto field names), prints the response as JSON and exits 0;
on a gRPC error prints {"code": NAME, "details": TEXT} and exits 1. The
stubs are generated from runtime_v1.proto by the test (grpc_tools.protoc)
into a directory on PYTHONPATH.
"""
import json
import sys

import grpc
from google.protobuf import json_format

import runtime_v1_pb2 as api
import runtime_v1_pb2_grpc as rpc


def main():
    sock, method = sys.argv[1], sys.argv[2]
    request = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    request_type = getattr(api, method + "Request")
    message = json_format.ParseDict(request, request_type())
    with grpc.insecure_channel("unix://" + sock) as channel:
        stub = rpc.RuntimeServiceStub(channel)
        try:
            response = getattr(stub, method)(message, timeout=120)
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "details": e.details()}))
            return 1
    print(json_format.MessageToJson(
        response, preserving_proto_field_name=True, including_default_value_fields=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
