using System.Globalization;
using System.Security.Cryptography;
using SkiaSharp;

namespace MLNet.Align.Encoders;

/// <summary>
/// A frozen ONNX image encoder run through ONNX Runtime on whole batches (not ML.NET's row-at-a-time scorer).
/// Images are decoded with SkiaSharp (PNG, JPEG, WebP, GIF, BMP...), composited onto white (transparent pixels become
/// white), resized per <see cref="OnnxImageEncoderOptions.ResizeMode"/> to S x S, and fed as planar float
/// [N, 3, S, S]; an optional preprocessing ONNX runs first. Pooled output [N, D]; tokens (optional) [N, T, Dt]: a CNN
/// feature map [N, C, H, W] gives T = H*W tokens of C, a ViT sequence gives its patch tokens (CLS dropped).
/// Batches are pipelined: one decode thread prepares the next batches while <see cref="Parallelism"/> session runs go on at
/// once (see <see cref="OnnxImageEncoderOptions.InferenceParallelism"/>); outputs equal one-batch-at-a-time runs.
/// Thread-safe (ONNX Runtime sessions are); holds native sessions: dispose it.
/// </summary>
public sealed class OnnxImageEncoder : IImageEncoder
{
    private readonly OnnxImageEncoderOptions _o;
    private readonly OnnxBatchRunner _model;
    private readonly OnnxBatchRunner? _prep;
    private readonly long[] _pixelShape;
    private readonly long[] _modelItemShape;
    private readonly int _tokenCount;
    private readonly string? _prepOutputName;
    private readonly string _pooledName;
    private volatile bool _disposed;

    /// <summary>Loads the model(s), makes a batch-1 graph batchable when allowed, and probes the output sizes.</summary>
    /// <exception cref="ArgumentException">Options are inconsistent, or an input/output name is not in the model (the
    /// message lists the model's actual names).</exception>
    /// <exception cref="FileNotFoundException">A model file does not exist (the message names it).</exception>
    /// <exception cref="InvalidDataException">A model file is not ONNX.</exception>
    public OnnxImageEncoder(OnnxImageEncoderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _o = options;
        if (options.ImageSize <= 0) throw new ArgumentException($"ImageSize must be positive, got {options.ImageSize}.", nameof(options));
        if (options.BatchSize <= 0) throw new ArgumentException($"BatchSize must be positive, got {options.BatchSize}.", nameof(options));
        if (options.MaxImagePixels <= 0) throw new ArgumentException($"MaxImagePixels must be positive, got {options.MaxImagePixels}.", nameof(options));
        if (options.Mean is not { Length: 3 } || options.Std is not { Length: 3 })
            throw new ArgumentException("Mean and Std must have 3 values (one per channel).", nameof(options));
        if (options.Std.Any(s => s == 0)) throw new ArgumentException("Std values must be non-zero.", nameof(options));
        bool derived = string.IsNullOrEmpty(options.PooledOutputName) || options.PooledOutputName == options.TokenOutputName;
        if (derived && string.IsNullOrEmpty(options.TokenOutputName))
            throw new ArgumentException("Give PooledOutputName (a pooled [N, D] output) or TokenOutputName (a ViT sequence or CNN feature map to pool).", nameof(options));
        if (derived && options.TokenKind == ImageTokenKind.FeatureMap && options.Pooling != ImagePooling.MeanPatch)
            throw new ArgumentException($"Pooling {options.Pooling} needs a CLS token: a feature map (TokenKind FeatureMap) pools only with MeanPatch.", nameof(options));
        if (options.RegisterTokens < 0 || options.ClsTokenIndex < 0)
            throw new ArgumentException($"ClsTokenIndex ({options.ClsTokenIndex}) and RegisterTokens ({options.RegisterTokens}) must be >= 0.", nameof(options));
        if (options.ResizeSize is int rs && rs < options.ImageSize)
            throw new ArgumentException($"ResizeSize ({rs}) must be at least ImageSize ({options.ImageSize}): the crop is taken from the resized image.", nameof(options));
        _pooledName = derived ? options.TokenOutputName! : options.PooledOutputName;

        byte[] modelBytes = LoadBytes(options.ModelBytes, options.ModelPath, "image model");
        byte[]? prepBytes = options.PreprocessingModelBytes ?? (options.PreprocessingModelPath is null ? null : LoadBytes(null, options.PreprocessingModelPath, "preprocessing model"));

        if (options.InferenceParallelism < 0) throw new ArgumentException($"InferenceParallelism must be >= 0 (0 = automatic), got {options.InferenceParallelism}.", nameof(options));
        if (options.IntraOpThreads < 0) throw new ArgumentException($"IntraOpThreads must be >= 0 (0 = automatic), got {options.IntraOpThreads}.", nameof(options));
        int cores = Environment.ProcessorCount;
        Parallelism = options.InferenceParallelism > 0 ? options.InferenceParallelism : OnnxImageEncoderOptions.AutoInferenceParallelism(cores);
        IntraOpThreads = options.IntraOpThreads > 0 ? options.IntraOpThreads : Parallelism == 1 ? 0 : Math.Max(1, cores / Parallelism);
        int s = options.ImageSize;
        _pixelShape = [3, s, s];
        ExecutionProvider = OnnxExecution.Resolve($"image encoder {options.Name}", options.GpuDeviceId, options.FallbackToCpu, options.Log);
        try
        {
            if (prepBytes is not null)
            {
                var prepOutputs = MLNet.Align.Onnx.OnnxGraphEditor.Parse(prepBytes).Graph.Output.Select(o => o.Name).ToArray();
                _prepOutputName = options.PreprocessingOutputName ?? prepOutputs.FirstOrDefault()
                    ?? throw new ArgumentException("The preprocessing model has no output.");
                _prep = new OnnxBatchRunner(prepBytes, "preprocessing model", options.PreprocessingInputName, [_prepOutputName], [],
                    options.AllowGraphBatchEdit, IntraOpThreads, ExecutionProvider);
            }
            var outputs = new List<string> { _pooledName };
            var extra = new List<string>();
            if (options.TokenOutputName is not null && options.TokenOutputName != _pooledName) extra.Add(options.TokenOutputName);
            _model = new OnnxBatchRunner(modelBytes, "image model", options.InputName, outputs, extra, options.AllowGraphBatchEdit, IntraOpThreads, ExecutionProvider);
        }
        catch
        {
            _prep?.Dispose();
            throw;
        }

        var itemDims = _model.InputItemDims;
        _modelItemShape = itemDims.Select((d, i) => d > 0 ? (long)d : _pixelShape[Math.Min(i, 2)]).ToArray();

        // Probe one white image for the output sizes (also proves the chain runs end to end).
        using var white = new SKBitmap(new SKImageInfo(s, s, SKColorType.Rgba8888, SKAlphaType.Premul));
        white.Erase(SKColors.White);
        var (probePooled, probeTokens) = RunBatch([white], options.TokenOutputName is not null, out int pooledDim, out int tokenCount, out int tokenDim);
        _tokenCount = tokenCount;
        // A model or options that give NaN for a plain white image (e.g. a Std of 1e-40 turns pixels into infinities)
        // would write NaN into every store and bundle: refuse them here, once, rather than per image.
        try
        {
            RequireFiniteOutput(probePooled, probeTokens, pooledDim, tokenCount * tokenDim, 1, _ => "a white probe image");
        }
        catch
        {
            _model.Dispose();
            _prep?.Dispose();
            throw;
        }
        Identity = new EncoderIdentity(options.Name, ComputeSha256(modelBytes, prepBytes, options), pooledDim,
            options.TokenOutputName is null ? null : tokenDim);
    }

    /// <inheritdoc/>
    public EncoderIdentity Identity { get; }

    /// <summary>Batches inferred at once (<see cref="OnnxImageEncoderOptions.InferenceParallelism"/> resolved).</summary>
    public int Parallelism { get; }

    /// <summary>Intra-op threads of each session run (<see cref="OnnxImageEncoderOptions.IntraOpThreads"/> resolved;
    /// 0 = ONNX Runtime's default).</summary>
    public int IntraOpThreads { get; }

    /// <summary>ONNX Runtime execution provider that runs the model: "CPU" or "CUDA:N" (<see cref="OnnxExecution.Resolve"/>).</summary>
    public string ExecutionProvider { get; }

    /// <summary>Number of tokens per image (H*W or T), or 0 without a token output.</summary>
    public int TokenCount => _tokenCount;

    /// <summary>How batches run (native, graph-edited, or per item).</summary>
    public ImageBatchMode BatchMode => _model.BatchMode;

    /// <summary>Account of the batch handling of the model and of the preprocessing model (edit, measured check, fallback).</summary>
    public string BatchEditReport => _prep is null ? _model.BatchEditReport : $"model: {_model.BatchEditReport}; preprocessing: {_prep.BatchEditReport}";

    /// <summary>The options the encoder was built with (do not mutate).</summary>
    public OnnxImageEncoderOptions Options => _o;

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The encoder was disposed.</exception>
    /// <exception cref="InvalidDataException">The model produced NaN or infinity for an image (the message names it).</exception>
    public EncodedBatch EncodeBatch(IReadOnlyList<string> imagePaths, bool withTokens = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return EncodeCore(imagePaths.Count, withTokens, cancellationToken, i => ImageFileDecoder.Decode(imagePaths[i], _o.MaxImagePixels), ownsBitmaps: true,
            i => $"image '{imagePaths[i]}'");
    }

    /// <inheritdoc/>
    /// <exception cref="ObjectDisposedException">The encoder was disposed.</exception>
    /// <exception cref="InvalidDataException">The model produced NaN or infinity for an image (the message names its index).</exception>
    public EncodedBatch EncodeBitmaps(IReadOnlyList<SKBitmap> images, bool withTokens = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return EncodeCore(images.Count, withTokens, cancellationToken,
            i => images[i] ?? throw new ArgumentException($"Image {i} is null.", nameof(images)), ownsBitmaps: false, i => $"image {i} of the batch");
    }

    /// <summary>Decodes an image file with SkiaSharp, strictly (truncated files are errors) and upright (EXIF
    /// orientation applied): <see cref="ImageFileDecoder.Decode"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is a folder, not a decodable image, truncated or corrupt.</exception>
    public static SKBitmap LoadImage(string path) => ImageFileDecoder.Decode(path);

    private EncodedBatch EncodeCore(int n, bool withTokens, CancellationToken ct, Func<int, SKBitmap> get, bool ownsBitmaps, Func<int, string> describe)
    {
        if (withTokens && Identity.TokenDimension is null)
            throw new InvalidOperationException($"Encoder '{Identity.Name}' has no token output (set TokenOutputName).");
        int d = Identity.Dimension, td = Identity.TokenDimension ?? 0;
        var pooled = new float[(long)n * d];
        var tokens = withTokens ? new float[checked((long)n * _tokenCount * td)] : null;
        int b = _o.BatchSize;
        // Decode + pixel preparation of one batch (on the decode thread when pipelined). Each image is decoded, drawn
        // at S x S and released before the next, so at most one full-size bitmap is alive per batch.
        (int Start, int Count, float[] Input) Prepare(int start)
        {
            int count = Math.Min(b, n - start);
            int itemLen = 3 * _o.ImageSize * _o.ImageSize;
            var input = new float[count * itemLen];
            for (int i = 0; i < count; i++)
            {
                var bm = get(start + i);
                try { FillPixels(bm, input.AsSpan(i * itemLen, itemLen)); }
                finally { if (ownsBitmaps) bm.Dispose(); }
            }
            return (start, count, input);
        }
        void Infer((int Start, int Count, float[] Input) batch)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var (p, t) = RunPrepared(batch.Input, batch.Count, withTokens, out _, out _, out _);
            RequireFiniteOutput(p, t, d, _tokenCount * td, batch.Count, i => describe(batch.Start + i));
            p.CopyTo(pooled, (long)batch.Start * d);
            t?.CopyTo(tokens!, (long)batch.Start * _tokenCount * td);
        }
        int batches = (n + b - 1) / b;
        if (batches <= 1)
        {
            for (int start = 0; start < n; start += b) { ct.ThrowIfCancellationRequested(); Infer(Prepare(start)); }
        }
        else RunPipelined(batches, b, Prepare, Infer, ct);
        var tokenTensor = tokens is null ? null : new TokenTensor(tokens, n, _tokenCount, td, Enumerable.Repeat(_tokenCount, n).ToArray());
        return new EncodedBatch(new EmbeddingMatrix(pooled, n, d), tokenTensor);
    }

    /// <summary>Refuses NaN or infinite encoder outputs, naming the first item that has one: a NaN embedding would be
    /// stored and later look like a perfect match. One vectorised pass over the batch's outputs.</summary>
    private void RequireFiniteOutput(float[] pooled, float[]? tokens, int pooledDim, int tokenWidth, int count, Func<int, string> describe)
    {
        foreach (var (values, width, part) in new[] { (pooled, pooledDim, "pooled output"), (tokens, tokenWidth, "token output") })
        {
            if (values is null) continue;
            int at = FiniteCheck.IndexOfNonFinite(values);
            if (at < 0) continue;
            int item = at / Math.Max(1, width), column = at % Math.Max(1, width);
            throw new InvalidDataException($"Image encoder '{_o.Name}' produced {FiniteCheck.Name(values[at])} for {describe(item)} ({part}, " +
                $"column {column}): check the model and its normalisation options (Mean {string.Join(",", _o.Mean)}, Std {string.Join(",", _o.Std)}, " +
                $"ValueScale {_o.ValueScale}; --image-mean/--image-std/--image-scale).");
        }
    }

    /// <summary>
    /// One decode thread prepares batches in order, at most <see cref="Parallelism"/> ahead; <see cref="Parallelism"/>
    /// workers run them concurrently (ONNX Runtime sessions allow concurrent Run calls). The first failure (in input
    /// order for decoding) cancels the rest and is rethrown as is.
    /// </summary>
    private void RunPipelined(int batches, int b, Func<int, (int, int, float[])> prepare, Action<(int, int, float[])> infer, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var queue = new System.Collections.Concurrent.BlockingCollection<(int, int, float[])>(Parallelism);
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failure = null;
        void Fail(Exception e)
        {
            if (e is OperationCanceledException && stop.IsCancellationRequested) return;
            Interlocked.CompareExchange(ref failure, System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e), null);
            stop.Cancel();
        }
        var decoder = new Thread(() =>
        {
            try
            {
                for (int k = 0; k < batches && !stop.IsCancellationRequested; k++) queue.Add(prepare(k * b), stop.Token);
            }
            catch (Exception e) { Fail(e); }
            finally { queue.CompleteAdding(); }
        }) { IsBackground = true, Name = "MLNet.Align image decode" };
        var workers = new Thread[Math.Min(Parallelism, batches)];
        for (int w = 0; w < workers.Length; w++)
            workers[w] = new Thread(() =>
            {
                try { foreach (var item in queue.GetConsumingEnumerable(stop.Token)) infer(item); }
                catch (Exception e) { Fail(e); }
            }) { IsBackground = true, Name = "MLNet.Align image inference" };
        decoder.Start();
        foreach (var t in workers) t.Start();
        decoder.Join();
        foreach (var t in workers) t.Join();
        failure?.Throw();
        ct.ThrowIfCancellationRequested();
    }

    private float[] PrepareInput(IReadOnlyList<SKBitmap> bitmaps)
    {
        int count = bitmaps.Count;
        int itemLen = 3 * _o.ImageSize * _o.ImageSize;
        var input = new float[count * itemLen];
        for (int i = 0; i < count; i++) FillPixels(bitmaps[i], input.AsSpan(i * itemLen, itemLen));
        return input;
    }

    private (float[] Pooled, float[]? Tokens) RunBatch(IReadOnlyList<SKBitmap> bitmaps, bool withTokens,
        out int pooledDim, out int tokenCount, out int tokenDim)
        => RunPrepared(PrepareInput(bitmaps), bitmaps.Count, withTokens, out pooledDim, out tokenCount, out tokenDim);

    private (float[] Pooled, float[]? Tokens) RunPrepared(float[] input, int count, bool withTokens,
        out int pooledDim, out int tokenCount, out int tokenDim)
    {
        if (_prep is not null)
            input = _prep.Run(input, count, _pixelShape, [_prepOutputName!])[0].Data;

        string pooledName = _pooledName;
        bool derived = pooledName == _o.TokenOutputName;
        string? tokenName = withTokens || derived ? _o.TokenOutputName : null;
        var names = new List<string> { pooledName };
        if (tokenName is not null && tokenName != pooledName) names.Add(tokenName);
        var outs = _model.Run(input, count, _modelItemShape, names);
        var tokenOut = tokenName is null ? null : (tokenName == pooledName ? outs[0] : outs[1]);

        // Tokens [count, T, D]: feature-map positions, or the ViT sequence without CLS and registers.
        tokenCount = 0; tokenDim = 0;
        float[]? tokens = null;
        float[]? cls = null;
        if (tokenOut is not null)
        {
            var sh = tokenOut.Shape;
            if (_o.TokenKind == ImageTokenKind.FeatureMap)
            {
                if (sh.Length != 4) throw new InvalidOperationException($"Token output '{tokenName}' has shape [{string.Join(",", sh)}], expected a feature map [N, C, H, W] (TokenKind FeatureMap).");
                int c = (int)sh[1], hw = (int)(sh[2] * sh[3]);
                tokenCount = hw; tokenDim = c;
                tokens = new float[count * hw * c];
                var src = tokenOut.Data;
                for (int i = 0; i < count; i++)
                {
                    int baseIn = i * c * hw, baseOut = i * hw * c;
                    for (int ch = 0; ch < c; ch++)
                        for (int t = 0; t < hw; t++)
                            tokens[baseOut + t * c + ch] = src[baseIn + ch * hw + t];
                }
            }
            else
            {
                if (sh.Length != 3) throw new InvalidOperationException($"Token output '{tokenName}' has shape [{string.Join(",", sh)}], expected a ViT sequence [N, 1+R+T, D] (TokenKind VitSequence).");
                int len = (int)sh[1], dim = (int)sh[2], skip = 1 + _o.RegisterTokens;
                if (_o.ClsTokenIndex + skip > len)
                    throw new InvalidOperationException($"Output '{tokenName}' has {len} tokens: too few for CLS at index {_o.ClsTokenIndex} followed by {_o.RegisterTokens} register tokens.");
                tokenCount = len - skip; tokenDim = dim;
                if (tokenCount < 1) throw new InvalidOperationException($"Output '{tokenName}' has {len} tokens: none left after CLS and {_o.RegisterTokens} registers.");
                tokens = new float[count * tokenCount * dim];
                cls = new float[count * dim];
                for (int i = 0; i < count; i++)
                {
                    tokenOut.Data.AsSpan((i * len + _o.ClsTokenIndex) * dim, dim).CopyTo(cls.AsSpan(i * dim, dim));
                    int o = 0;
                    for (int t = 0; t < len; t++)
                    {
                        if (t >= _o.ClsTokenIndex && t < _o.ClsTokenIndex + skip) continue;
                        tokenOut.Data.AsSpan((i * len + t) * dim, dim).CopyTo(tokens.AsSpan((i * tokenCount + o) * dim, dim));
                        o++;
                    }
                }
            }
        }

        float[] pooled;
        if (derived)
        {
            int dim = tokenDim, nt = tokenCount;
            float[] Mean()
            {
                var m = new float[count * dim];
                for (int i = 0; i < count; i++)
                {
                    var dst = m.AsSpan(i * dim, dim);
                    for (int t = 0; t < nt; t++) System.Numerics.Tensors.TensorPrimitives.Add(dst, tokens.AsSpan((i * nt + t) * dim, dim), dst);
                    System.Numerics.Tensors.TensorPrimitives.Divide(dst, nt, dst);
                }
                return m;
            }
            switch (_o.Pooling)
            {
                case ImagePooling.Cls: pooled = cls!; pooledDim = dim; break;
                case ImagePooling.MeanPatch: pooled = Mean(); pooledDim = dim; break;
                default:
                    var mean = Mean();
                    pooled = new float[count * 2 * dim];
                    for (int i = 0; i < count; i++)
                    {
                        cls!.AsSpan(i * dim, dim).CopyTo(pooled.AsSpan(i * 2 * dim, dim));
                        mean.AsSpan(i * dim, dim).CopyTo(pooled.AsSpan(i * 2 * dim + dim, dim));
                    }
                    pooledDim = 2 * dim;
                    break;
            }
        }
        else
        {
            pooled = outs[0].Data;
            pooledDim = pooled.Length / count;
        }
        if (!withTokens) { tokens = null; }
        return (pooled, tokens);
    }

    /// <summary>The model input prepared for one image, before any preprocessing ONNX: planar [3, S, S] floats
    /// (composited onto white, resized, scaled, mean/std normalised, in <see cref="OnnxImageEncoderOptions.ChannelOrder"/>).</summary>
    public float[] PreparePixels(SKBitmap image)
    {
        ArgumentNullException.ThrowIfNull(image);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new float[3 * _o.ImageSize * _o.ImageSize];
        FillPixels(image, result);
        return result;
    }

    /// <summary>Composites <paramref name="src"/> onto white at S x S and writes planar normalised floats.</summary>
    private unsafe void FillPixels(SKBitmap src, Span<float> dest)
    {
        int s = _o.ImageSize;
        using var canvasBitmap = new SKBitmap(new SKImageInfo(s, s, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(canvasBitmap))
        {
            canvas.Clear(SKColors.White);
            SKRect dst;
            if (_o.ResizeMode == ImageResizeMode.Squash || (src.Width == src.Height && (_o.ResizeSize ?? s) == s))
            {
                dst = new SKRect(0, 0, s, s);
            }
            else
            {
                float scale = (_o.ResizeSize ?? s) / (float)Math.Min(src.Width, src.Height);
                float w = src.Width * scale, h = src.Height * scale;
                dst = SKRect.Create((s - w) / 2f, (s - h) / 2f, w, h);
            }
            // At 1:1 no resampling is needed; filtering would still blur edges next to transparent pixels by a level.
            bool identity = src.Width == s && src.Height == s && dst.Left == 0 && dst.Top == 0 && dst.Width == s && dst.Height == s;
            using var paint = new SKPaint { FilterQuality = identity ? SKFilterQuality.None : SKFilterQuality.High, IsAntialias = !identity };
            canvas.DrawBitmap(src, dst, paint);
        }
        // GetPixels() (a pointer) rather than GetPixelSpan(): the latter changed its return type in SkiaSharp 3.x, which
        // apps referencing ScottPlot load instead of the 2.88 this library compiles against.
        ReadOnlySpan<byte> px;
        px = new ReadOnlySpan<byte>((void*)canvasBitmap.GetPixels(), s * s * 4);
        int plane = s * s;
        // Canvas is opaque (white background), so premultiplied == straight RGB.
        int r = _o.ChannelOrder == ChannelOrder.Rgb ? 0 : 2, b = 2 - r;
        float scaleV = _o.ValueScale;
        for (int c = 0; c < 3; c++)
        {
            int srcChannel = c == 0 ? r : c == 2 ? b : 1;
            float mean = _o.Mean[c], inv = 1f / _o.Std[c];
            var outPlane = dest.Slice(c * plane, plane);
            for (int p = 0; p < plane; p++)
                outPlane[p] = (px[p * 4 + srcChannel] * scaleV - mean) * inv;
        }
    }

    internal static byte[] LoadBytes(byte[]? bytes, string? path, string what)
    {
        if (bytes is not null) return bytes;
        if (string.IsNullOrEmpty(path)) throw new ArgumentException($"Give the {what} as a path or as bytes.");
        if (!File.Exists(path)) throw new FileNotFoundException($"The {what} file was not found: '{path}'.", path);
        return File.ReadAllBytes(path);
    }

    private static string ComputeSha256(byte[] model, byte[]? prep, OnnxImageEncoderOptions o)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Utf8("MLNet.Align.OnnxImageEncoder/1\n"));
        sha.AppendData(model);
        sha.AppendData(Utf8($"\nprep:{prep?.Length ?? -1}\n"));
        if (prep is not null) sha.AppendData(prep);
        var ci = CultureInfo.InvariantCulture;
        string opts = string.Join("|",
            o.InputName ?? "", o.PooledOutputName, o.TokenOutputName ?? "", o.TokenKind, o.ClsTokenIndex.ToString(ci),
            o.ImageSize.ToString(ci), o.ResizeMode, o.ValueScale.ToString("R", ci),
            string.Join(",", o.Mean.Select(v => v.ToString("R", ci))), string.Join(",", o.Std.Select(v => v.ToString("R", ci))),
            o.ChannelOrder, "composite:white", "filter:high");
        // Appended only when not the old defaults, so identities (and caches) of existing configurations stay valid.
        bool derived = string.IsNullOrEmpty(o.PooledOutputName) || o.PooledOutputName == o.TokenOutputName;
        if (o.RegisterTokens != 0 || (derived && o.Pooling != ImagePooling.Cls) || o.ResizeSize is not null)
            opts += $"|registers:{o.RegisterTokens}|pooling:{(derived ? o.Pooling.ToString() : "output")}|resize:{o.ResizeSize?.ToString(ci) ?? "-"}";
        sha.AppendData(Utf8(opts));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static byte[] Utf8(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    /// <summary>Disposes the ONNX Runtime sessions; later calls to EncodeBatch and friends throw
    /// <see cref="ObjectDisposedException"/> instead of reaching a freed native session. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _model.Dispose();
        _prep?.Dispose();
    }
}
