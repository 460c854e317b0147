# grpcio in .venv: the end-to-end test of gRPC-shaped refusals makes real
# gRPC calls through Envoy with it, and fails (never skips) without it.

GRPCIO_VERSION ?= 1.85.3

.PHONY: grpcio
TEST_DEPS += grpcio

grpcio: $(VENV)/bin/envoy
	@$(VENV)/bin/python -c 'import grpc' 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check grpcio==$(GRPCIO_VERSION)
	@$(VENV)/bin/python -c 'import grpc; print("grpcio", grpc.__version__)'
