"""Hand-written calibration pairs for GROUNDED_THRESHOLD against the bundled docs: paraphrases the
docs support, and plausible claims about the same topics that the docs do not support."""

SUPPORTED = [
    "Each KV cache block holds 16 tokens.",
    "A block table records which blocks belong to a sequence.",
    "New requests can join the running batch at every step.",
    "Finished sequences leave the batch right away.",
    "SQLite is the source of truth for a RAG store.",
    "A stale or missing index file is rebuilt from SQLite after a crash.",
    "Int8 weights have one scale per output channel.",
    "The kernel variant is picked at run time from the CPU features.",
    "Long texts are cut to 256 tokens by the embedder.",
    "The bench command fails when a result is over 10% slower than the baseline.",
    "Identical chunks are stored only once.",
    "Greedy decoding is chosen by setting the temperature to zero.",
]
UNSUPPORTED = [
    "Each KV cache block holds 4096 tokens.",
    "The scheduler processes one request at a time in arrival order.",
    "The vector index is stored in a PostgreSQL database.",
    "Int8 weights are quantized with a single global scale for the whole model.",
    "The kernels are compiled with -march=native for maximum speed.",
    "The embedder uses a 24-layer BERT-large model.",
    "The benchmark machine has 64 cores and 1 TB of memory.",
    "Paris is the capital of France.",
    "Bananas are rich in potassium.",
    "The engine only supports beam search decoding.",
    "Documents are split into chunks of exactly 1000 characters.",
    "CUDA is required to import infercore.",
]
