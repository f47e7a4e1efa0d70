"""Model loading: GGUF and safetensors readers, configs, tokenizers, chat templates, model registry."""
