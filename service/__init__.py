"""The nld model service: FastAPI app (`service.main.create_app`) and its httpx client."""
