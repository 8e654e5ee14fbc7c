"""Protocol sources and the Python modules generated from them by `make protos`.

`grpc_service.proto` + `model_config.proto`: OIP gRPC in Triton's layout (package `inference`).
`chassis/protos/v1/model.proto`: Chassis OMI (no package), generated as `omi_pb2`.
"""
