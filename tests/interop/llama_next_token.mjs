// llama_next_token.mjs - run a GGUF file through llama.cpp (the prebuilt CPU
// binary shipped by node-llama-cpp) and print its greedy next token after each
// prefix of a fixed token sequence. An implementation nobody on this project
// wrote reads the file, so agreement with the transformers reference means
// the file is what llama.cpp expects.
//
//   node llama_next_token.mjs [--logits-out=FILE] MODEL.gguf PROMPT_JSON [N_PREFIXES]
//
// PROMPT_JSON holds {"tokens": [ids...]} (tests/fixtures/reference/*/prompt.json).
// The raw ids are fed as they are: no tokenizer, no chat template, no BOS.
// One batch evaluates the first N_PREFIXES tokens (default: all) with logits
// kept at every position, so prefix k's next token is the argmax of the
// logits at position k-1.
//
// Numerics: F32 KV cache and no flash attention. With llama.cpp's defaults
// (F16 KV, flash attention "auto") logits move by ~1e-2 and even depend on the
// batch size (flash attention takes another path from 64 tokens on); with
// these settings an F32 GGUF of qwen3-tiny reproduces transformers' f32
// logits to < 1e-4 and the result does not depend on batching.
//
// --logits-out=FILE also writes llama.cpp's full logits as raw little-endian
// f32 [position][n_vocab], the layout of prompt.logits.f32.
//
// stdout (one JSON object):
//   {"loaded":true,"n_vocab":V,"n_ctx":C,
//    "results":[{"prefix_len":k,"next":id,"top":[[id,logit],[id,logit]]},...]}
// Errors: message on stderr, exit status 1 (2 for bad usage). llama.cpp's own
// log lines (warnings and up) also go to stderr.
import {readFileSync, writeFileSync} from "node:fs";

function die(code, msg) {
    process.stderr.write(`llama_next_token: ${msg}\n`);
    process.exit(code);
}

function parseArgs(allArgs) {
    let logitsOut = null;
    const argv = [];
    for (const a of allArgs) {
        if (a.startsWith("--logits-out="))
            logitsOut = a.slice("--logits-out=".length);
        else
            argv.push(a);
    }
    if (argv.length < 2 || argv.length > 3 || logitsOut === "")
        die(2, "usage: node llama_next_token.mjs [--logits-out=FILE] MODEL.gguf PROMPT_JSON [N_PREFIXES]");
    const [modelPath, promptPath, nArg] = argv;
    let prompt;
    try {
        prompt = JSON.parse(readFileSync(promptPath, "utf8"));
    } catch (e) {
        die(1, `${promptPath}: ${e.message}`);
    }
    const tokens = prompt?.tokens;
    if (!Array.isArray(tokens) || tokens.length === 0 ||
        !tokens.every((t) => Number.isInteger(t) && t >= 0))
        die(1, `${promptPath}: "tokens" must be a non-empty array of token ids`);
    let n = tokens.length;
    if (nArg !== undefined) {
        if (!/^[0-9]+$/.test(nArg) || Number(nArg) < 1 || Number(nArg) > tokens.length)
            die(2, `N_PREFIXES must be 1..${tokens.length}, got "${nArg}"`);
        n = Number(nArg);
    }
    return {modelPath, tokens: tokens.slice(0, n), logitsOut};
}

async function main() {
    const {modelPath, tokens, logitsOut} = parseArgs(process.argv.slice(2));
    const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");

    // build "never" + skipDownload: use the prebuilt binary from
    // @node-llama-cpp/linux-x64 or fail; never fetch sources or run cmake.
    // gpu false: CPU only, so results do not depend on the host's GPU.
    const llama = await getLlama({
        build: "never",
        skipDownload: true,
        usePrebuiltBinaries: true,
        gpu: false,
        progressLogs: false,
        logLevel: LlamaLogLevel.warn,
        logger: (level, message) => process.stderr.write(`llama.cpp ${level}: ${message.trimEnd()}\n`),
    });
    try {
        const model = await llama.loadModel({modelPath, gpuLayers: 0});
        // llama.cpp rejects an out-of-range id only with "Eval has failed";
        // name the id instead.
        const vocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens;
        const bad = Array.isArray(vocab) ? tokens.find((t) => t >= vocab.length) : undefined;
        if (bad !== undefined)
            throw new Error(`token id ${bad} is outside the model's vocabulary (${vocab.length} tokens)`);
        const context = await model.createContext({
            contextSize: Math.max(tokens.length + 1, 64),
            batchSize: tokens.length,
            sequences: 1,
            flashAttention: false,
            experimentalKvCacheKeyType: "F32",
            experimentalKvCacheValueType: "F32",
        });
        const sequence = context.getSequence();
        const last = tokens.length - 1;
        // Top two raw logits at every position; the full row only at the last
        // one (to learn the logit-vector width, llama.cpp's n_vocab) unless
        // every row is to be written out.
        const input = tokens.map((t, i) => [t, {
            generateNext: {logits: (i === last || logitsOut) ? true : {filter: {includeTop: 2}}},
        }]);
        const out = await sequence.controlledEvaluate(input);
        const results = [];
        let nVocab = out[last]?.next?.logits?.size ?? 0;
        const rows = logitsOut ? new Float32Array(tokens.length * nVocab) : null;
        for (let i = 0; i < tokens.length; i++) {
            const logits = out[i]?.next?.logits;
            if (!(logits instanceof Map) || logits.size === 0)
                throw new Error(`no logits returned for position ${i}`);
            // The map is sorted by logit, highest first.
            const top = [...logits.entries()].slice(0, 2);
            if (rows) {
                if (logits.size !== nVocab)
                    throw new Error(`position ${i}: ${logits.size} logits, expected ${nVocab}`);
                for (const [t, v] of logits)
                    rows[i * nVocab + t] = v;
            }
            results.push({prefix_len: i + 1, next: top[0][0], top});
        }
        // Float32Array is little-endian on every platform node-llama-cpp ships for.
        if (rows)
            writeFileSync(logitsOut, new Uint8Array(rows.buffer));
        const json = JSON.stringify({loaded: true, n_vocab: nVocab, n_ctx: context.contextSize, results});
        await context.dispose();
        await model.dispose();
        await new Promise((resolve) => process.stdout.write(json + "\n", resolve));
    } finally {
        await llama.dispose();
    }
}

main().then(() => process.exit(0), (e) => die(1, e?.message ?? String(e)));
