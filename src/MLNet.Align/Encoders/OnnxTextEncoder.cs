using System.Globalization;
using System.Numerics.Tensors;
using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;

namespace MLNet.Align.Encoders;

/// <summary>
/// A frozen ONNX sentence encoder (sentence-transformers export: the Transformer module only) with the pooling and
/// normalisation done here, as sentence-transformers' Pooling and Normalize modules do. Tokenizes with
/// Microsoft.ML.Tokenizers (WordPiece or byte-level BPE), sorts texts by token count, pads each batch to its own
/// longest text, runs ONNX Runtime on the batch and restores input order. Pooled output [N, D]; tokens (optional)
/// [N, Lmax, D] last hidden states, zeroed past each text's length, with lengths = attention-mask sums.
/// Thread-safe; holds a native session: dispose it.
/// </summary>
public sealed class OnnxTextEncoder : ITextEncoder
{
    private readonly OnnxTextEncoderOptions _o;
    private readonly InferenceSession _session;
    private readonly SessionOptions _sessionOptions;
    private volatile bool _disposed;
    private readonly Tokenizer _tokenizer;
    private readonly Func<string, IReadOnlyList<int>> _encodeIds;
    private readonly int _startId, _endId, _padId;
    private readonly bool _hasTokenTypes;

    /// <summary>HF BERT basic tokenization: a punctuation char (Unicode P* or ASCII 33-47, 58-64, 91-96, 123-126) alone,
    /// or a run of chars that are neither whitespace nor punctuation.</summary>
    private static readonly System.Text.RegularExpressions.Regex BertBasicSplit = new(
        @"[!-/:-@\[-`{-~\p{P}]|[^\s!-/:-@\[-`{-~\p{P}]+", System.Text.RegularExpressions.RegexOptions.Compiled);

    /// <summary>Loads the model and tokenizer.</summary>
    /// <exception cref="FileNotFoundException">A model or vocabulary file does not exist (the message names it).</exception>
    /// <exception cref="ArgumentException">Options are inconsistent, or an input/output name is not in the model (the
    /// message lists the model's actual names).</exception>
    public OnnxTextEncoder(OnnxTextEncoderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _o = options;
        if (options.MaxLength < 3) throw new ArgumentException($"MaxLength must be at least 3, got {options.MaxLength}.", nameof(options));
        if (options.BatchSize <= 0) throw new ArgumentException($"BatchSize must be positive, got {options.BatchSize}.", nameof(options));

        byte[] model = OnnxImageEncoder.LoadBytes(options.ModelBytes, options.ModelPath, "text model");
        byte[] vocab = OnnxImageEncoder.LoadBytes(options.VocabBytes, options.VocabPath, "vocabulary");
        byte[]? merges = null;
        if (options.TokenizerKind == TextTokenizerKind.WordPiece)
        {
            // HF BERT's BasicTokenizer splits on every punctuation char, ASCII symbols included ('_', '+', '$', ...);
            // the package default (\w+|\p{P}) keeps '_' inside words and drops symbols such as '+'. Uncased
            // models also strip accents (HF: strip_accents follows do_lower_case).
            var bert = BertTokenizer.Create(new MemoryStream(vocab, writable: false), new BertOptions
            {
                LowerCaseBeforeTokenization = options.LowerCase,
                RemoveNonSpacingMarks = options.LowerCase,
                PreTokenizer = new RegexPreTokenizer(BertBasicSplit, null),
            });
            _tokenizer = bert;
            // Accent stripping removes combining marks only, so decompose first (NFD), as HF does ("café" -> "cafe").
            _encodeIds = options.LowerCase
                ? text => bert.EncodeToIds(text.Normalize(System.Text.NormalizationForm.FormD), addSpecialTokens: false)
                : text => bert.EncodeToIds(text, addSpecialTokens: false);
            (_startId, _endId, _padId) = (bert.ClassificationTokenId, bert.SeparatorTokenId, bert.PaddingTokenId);
        }
        else
        {
            merges = OnnxImageEncoder.LoadBytes(options.MergesBytes, options.MergesPath, "BPE merges");
            // GPT-2/RoBERTa byte-level BPE: GPT-2 regex pre-split (RobertaPreTokenizer), bytes mapped to printable chars
            // ('Ġ' = space), merges by rank. CodeGenTokenizer would insist on '<|endoftext|>' in the vocabulary.
            Dictionary<string, int> vocabulary;
            try { vocabulary = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(vocab) ?? []; }
            catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"The BPE vocabulary is not a JSON object of token -> id: {e.Message}", e); }
            var mergeLines = System.Text.Encoding.UTF8.GetString(merges).Split('\n')
                .Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal)).ToArray();
            var bpe = BpeTokenizer.Create(new BpeOptions(vocabulary)
            {
                Merges = mergeLines,
                PreTokenizer = RobertaPreTokenizer.Instance,
                ByteLevel = true,
            });
            _tokenizer = bpe;
            _encodeIds = options.BpeAddPrefixSpace
                ? text => bpe.EncodeToIds(text.Length > 0 && text[0] == ' ' ? text : " " + text)
                : text => bpe.EncodeToIds(text);
            int Lookup(string token) => vocabulary.TryGetValue(token, out int id) ? id
                : throw new ArgumentException($"The BPE vocabulary has no token '{token}'.", nameof(options));
            (_startId, _endId, _padId) = (Lookup(options.BpeBosToken), Lookup(options.BpeEosToken), Lookup(options.BpePadToken));
        }

        ExecutionProvider = OnnxExecution.Resolve($"text encoder {options.Name}", options.GpuDeviceId, options.FallbackToCpu, options.Log);
        _sessionOptions = OnnxExecution.CreateOptions(options.IntraOpThreads, ExecutionProvider);
        _session = new InferenceSession(model, _sessionOptions);
        try
        {
            var inputs = _session.InputMetadata.Keys.ToArray();
            foreach (var required in new[] { options.InputIdsName, options.AttentionMaskName })
                if (!inputs.Contains(required))
                    throw new ArgumentException($"The text model has no input named '{required}'. Its inputs: {string.Join(", ", inputs)}.");
            _hasTokenTypes = inputs.Contains(options.TokenTypeIdsName);
            var unknown = inputs.Where(i => i != options.InputIdsName && i != options.AttentionMaskName && i != options.TokenTypeIdsName).ToArray();
            if (unknown.Length > 0)
                throw new ArgumentException($"The text model has inputs this encoder cannot feed: {string.Join(", ", unknown)} (known: {options.InputIdsName}, {options.AttentionMaskName}, {options.TokenTypeIdsName}).");
            if (!_session.OutputMetadata.TryGetValue(options.OutputName, out var outMeta))
                throw new ArgumentException($"The text model has no output named '{options.OutputName}'. Its outputs: {string.Join(", ", _session.OutputMetadata.Keys)}.");
            int dim = outMeta.Dimensions.Length > 0 ? outMeta.Dimensions[^1] : -1;
            if (dim <= 0) dim = RunBatch([[_startId, _endId]], false).Pooled.Length;
            Identity = new EncoderIdentity(options.Name, ComputeSha256(model, vocab, merges, options), dim,
                options.Pooling == TextPooling.None ? null : dim);
        }
        catch
        {
            _session.Dispose();
            _sessionOptions.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public EncoderIdentity Identity { get; }

    /// <summary>ONNX Runtime execution provider that runs the model: "CPU" or "CUDA:N" (<see cref="OnnxExecution.Resolve"/>).</summary>
    public string ExecutionProvider { get; }

    /// <summary>The options the encoder was built with (do not mutate).</summary>
    public OnnxTextEncoderOptions Options => _o;

    /// <summary>Whether the model takes token_type_ids (detected from its inputs).</summary>
    public bool UsesTokenTypeIds => _hasTokenTypes;

    /// <summary>The underlying Microsoft.ML.Tokenizers tokenizer (BertTokenizer or byte-level BpeTokenizer).</summary>
    public Tokenizer Tokenizer => _tokenizer;

    /// <summary>Start ([CLS] / &lt;s&gt;), end ([SEP] / &lt;/s&gt;) and padding ids.</summary>
    public (int Start, int End, int Pad) SpecialTokenIds => (_startId, _endId, _padId);

    /// <summary>Token ids fed to the model for <paramref name="text"/>: start id, the text's ids truncated to
    /// MaxLength - 2, end id.</summary>
    public int[] Tokenize(string text)
    {
        var ids = _encodeIds(text);
        int keep = Math.Min(ids.Count, _o.MaxLength - 2);
        var result = new int[keep + 2];
        result[0] = _startId;
        for (int i = 0; i < keep; i++) result[i + 1] = ids[i];
        result[^1] = _endId;
        return result;
    }

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The encoder was disposed.</exception>
    /// <exception cref="InvalidDataException">The model produced NaN or infinity for a text (the message names it).</exception>
    public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, bool withTokens = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (withTokens && Identity.TokenDimension is null)
            throw new InvalidOperationException($"Encoder '{Identity.Name}' has Pooling = None: its output has no tokens.");
        int n = texts.Count, d = Identity.Dimension;
        var ids = new int[n][];
        for (int i = 0; i < n; i++)
        {
            if (string.IsNullOrWhiteSpace(texts[i]))
                throw new ArgumentException($"Text {i} is {(texts[i] is null ? "null" : "empty or whitespace")}; every text must have content.", nameof(texts));
            ids[i] = Tokenize(texts[i]);
        }
        // Length bucketing: sort by token count (stable), so each batch pads to a similar length.
        var order = Enumerable.Range(0, n).OrderBy(i => ids[i].Length).ToArray();
        int maxTokens = n == 0 ? 0 : ids.Max(x => x.Length);
        var pooled = new float[(long)n * d];
        var tokens = withTokens ? new float[checked((long)n * maxTokens * d)] : null;
        var lengths = new int[n];
        for (int start = 0; start < n; start += _o.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(_o.BatchSize, n - start);
            var batch = new int[count][];
            for (int k = 0; k < count; k++) batch[k] = ids[order[start + k]];
            ObjectDisposedException.ThrowIf(_disposed, this);
            var (p, hidden, len) = RunBatch(batch, withTokens);
            // Finite or fail: a NaN text embedding would be stored and later rank as a perfect match.
            int bad = FiniteCheck.IndexOfNonFinite(p);
            if (bad >= 0)
            {
                int item = order[start + bad / d];
                throw new InvalidDataException($"Text encoder '{Identity.Name}' produced {FiniteCheck.Name(p[bad])} for text {item} " +
                    $"('{Shorten(texts[item])}', column {bad % d}): check the model and its output/pooling options.");
            }
            for (int k = 0; k < count; k++)
            {
                int item = order[start + k];
                p.AsSpan(k * d, d).CopyTo(pooled.AsSpan(item * d, d));
                lengths[item] = batch[k].Length;
                if (tokens is not null)
                    for (int t = 0; t < batch[k].Length; t++)
                        hidden!.AsSpan((k * len + t) * d, d).CopyTo(tokens.AsSpan((item * maxTokens + t) * d, d));
            }
        }
        var tokenTensor = tokens is null ? null : new TokenTensor(tokens, n, maxTokens, d, lengths);
        return new EncodedBatch(new EmbeddingMatrix(pooled, n, d), tokenTensor);
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";

    /// <summary>Runs one padded batch; returns pooled [count, D], the raw hidden states [count, L, D] when asked, and L.</summary>
    private (float[] Pooled, float[]? Hidden, int Length) RunBatch(int[][] batch, bool keepHidden)
    {
        int count = batch.Length, len = batch.Max(b => b.Length);
        var idData = new long[count * len];
        var maskData = new long[count * len];
        for (int k = 0; k < count; k++)
        {
            for (int t = 0; t < len; t++)
            {
                bool real = t < batch[k].Length;
                idData[k * len + t] = real ? batch[k][t] : _padId;
                maskData[k * len + t] = real ? 1 : 0;
            }
        }
        long[] shape = [count, len];
        var names = new List<string> { _o.InputIdsName, _o.AttentionMaskName };
        using var idValue = OrtValue.CreateTensorValueFromMemory(idData, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(maskData, shape);
        using var typeValue = _hasTokenTypes ? OrtValue.CreateTensorValueFromMemory(new long[count * len], shape) : null;
        var values = new List<OrtValue> { idValue, maskValue };
        if (typeValue is not null) { names.Add(_o.TokenTypeIdsName); values.Add(typeValue); }
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, names, values, [_o.OutputName]);
        var output = outputs[0];
        var outShape = output.GetTensorTypeAndShape().Shape;
        ReadOnlySpan<float> h = output.GetTensorDataAsSpan<float>();

        int d = (int)outShape[^1];
        var pooled = new float[count * d];
        if (_o.Pooling == TextPooling.None)
        {
            if (outShape.Length != 2) throw new InvalidOperationException($"Output '{_o.OutputName}' has shape [{string.Join(",", outShape)}]; Pooling = None needs [N, D].");
            h.CopyTo(pooled);
        }
        else
        {
            if (outShape.Length != 3 || outShape[1] != len)
                throw new InvalidOperationException($"Output '{_o.OutputName}' has shape [{string.Join(",", outShape)}], expected [{count}, {len}, D].");
            for (int k = 0; k < count; k++)
            {
                var dst = pooled.AsSpan(k * d, d);
                if (_o.Pooling == TextPooling.Cls)
                {
                    h.Slice(k * len * d, d).CopyTo(dst);
                }
                else
                {
                    int valid = batch[k].Length; // mask is 1 exactly on the first `valid` positions
                    for (int t = 0; t < valid; t++) TensorPrimitives.Add(dst, h.Slice((k * len + t) * d, d), dst);
                    TensorPrimitives.Divide(dst, Math.Max(valid, 1e-9f), dst);
                }
            }
        }
        if (_o.Normalize)
        {
            for (int k = 0; k < count; k++)
            {
                var row = pooled.AsSpan(k * d, d);
                float norm = TensorPrimitives.Norm(row);
                TensorPrimitives.Divide(row, Math.Max(norm, 1e-12f), row);
            }
        }
        return (pooled, keepHidden ? h.ToArray() : null, len);
    }

    private static string ComputeSha256(byte[] model, byte[] vocab, byte[]? merges, OnnxTextEncoderOptions o)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        static byte[] U(string s) => System.Text.Encoding.UTF8.GetBytes(s);
        sha.AppendData(U("MLNet.Align.OnnxTextEncoder/1\n"));
        sha.AppendData(model);
        sha.AppendData(U($"\nvocab:{vocab.Length}\n"));
        sha.AppendData(vocab);
        sha.AppendData(U($"\nmerges:{merges?.Length ?? -1}\n"));
        if (merges is not null) sha.AppendData(merges);
        var ci = CultureInfo.InvariantCulture;
        sha.AppendData(U(string.Join("|", o.TokenizerKind, o.LowerCase, o.BpeBosToken, o.BpeEosToken, o.BpePadToken,
            o.MaxLength.ToString(ci), o.OutputName, o.Pooling, o.Normalize)));
        if (o.BpeAddPrefixSpace) sha.AppendData(U("|bpe-add-prefix-space")); // appended only when set: older identities stay valid
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Disposes the ONNX Runtime session; later <see cref="EncodeBatch"/> calls throw
    /// <see cref="ObjectDisposedException"/> instead of reaching a freed native session. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _session.Dispose();
        _sessionOptions.Dispose();
    }
}
