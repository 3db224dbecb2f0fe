using System.Security.Cryptography;
using System.Text.Json;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Onnx;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// A trained (or freshly initialised) pair of projectors: maps frozen image/text encoder features into one shared,
/// L2-normalised space (docs/method.md 3.3). Runs in TorchSharp (eval mode, no grad, batched), exports ONNX graphs of each
/// side, and persists as a bundle directory (<see cref="Save"/> / <see cref="Load"/>). Holds native memory: dispose it.
/// </summary>
public sealed partial class AlignedModel : IOnnxExportableProjector, IDisposable
{
    /// <summary>Bundle format version written by <see cref="Save"/>.</summary>
    public const int FormatVersion = 1;
    /// <summary>Bundle manifest file name.</summary>
    public const string ManifestFile = "alignment.json";
    /// <summary>Bundle weights file name (TorchSharp module.save format).</summary>
    public const string WeightsFile = "weights.bin";
    /// <summary>Bundle ONNX file of the image side (token layout [batch, tokens, dim]).</summary>
    public const string ImageOnnxFile = "image_projector.onnx";
    /// <summary>Bundle ONNX file of the text side.</summary>
    public const string TextOnnxFile = "text_projector.onnx";
    private const int ProjectBatch = 1024;

    private readonly object _gate = new();

    /// <summary>A new model with freshly initialised weights (seeded).</summary>
    /// <exception cref="ArgumentException">The architecture does not fit the widths (see <see cref="ProjectorOptions.Validate(int, int, int?, int?)"/>).</exception>
    public AlignedModel(ProjectorOptions projector, int imageDimension, int textDimension, int? imageTokenDimension = null,
        int? textTokenDimension = null, double initialTemperature = 0.07, int seed = 42)
    {
        ArgumentNullException.ThrowIfNull(projector);
        // TorchSharp's default initialisation draws from the process-wide generator: seeding and drawing under one lock
        // keeps two models built at once on two threads from taking each other's numbers.
        lock (TorchScalars.RandomGate)
        {
            random.manual_seed(seed);
            _network = new AlignmentNetwork(projector, imageDimension, textDimension, imageTokenDimension, textTokenDimension, initialTemperature);
        }
        _network.eval();
        ImageDimension = imageDimension; TextDimension = textDimension;
        ImageTokenDimension = imageTokenDimension; TextTokenDimension = textTokenDimension;
    }

    private readonly AlignmentNetwork _network;
    private volatile bool _disposed;

    /// <summary>The TorchSharp module (for the trainer and advanced use).</summary>
    /// <exception cref="ObjectDisposedException">The model was disposed (its native tensors are gone).</exception>
    public AlignmentNetwork Network { get { ThrowIfDisposed(); return _network; } }
    /// <summary>Architecture (readable after <see cref="Dispose"/>).</summary>
    public ProjectorOptions Projector => _network.Options;

    // A disposed module's tensors are freed native memory: touching them is a crash, not an exception.
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
    /// <summary>Pooled image embedding width the model expects.</summary>
    public int ImageDimension { get; }
    /// <summary>Pooled text embedding width.</summary>
    public int TextDimension { get; }
    /// <summary>Image token width (null when the data had no tokens).</summary>
    public int? ImageTokenDimension { get; }
    /// <summary>Text token width (null when the data had no tokens).</summary>
    public int? TextTokenDimension { get; }
    /// <summary>Image encoder the model was trained on (recorded in the bundle; informational).</summary>
    public EncoderIdentity? ImageEncoder { get; set; }
    /// <summary>Text encoder the model was trained on.</summary>
    public EncoderIdentity? TextEncoder { get; set; }
    /// <summary>Summary of the training run, if trained.</summary>
    public TrainingSummary? Training { get; set; }
    /// <summary>How to reopen the image encoder (complete options, paths, SHA-256), saved in alignment.json.</summary>
    public EncoderSource? ImageEncoderSource { get; set; }
    /// <summary>How to reopen the text encoder, saved in alignment.json.</summary>
    public EncoderSource? TextEncoderSource { get; set; }
    /// <summary>The bundle directory this model was loaded from (null when not loaded from a bundle).</summary>
    public string? BundleDirectory { get; private set; }

    /// <summary>Opens the image encoder the model was trained on: from <see cref="ImageEncoderSource"/> (files checked
    /// by SHA-256), else the packaged encoder matching <see cref="ImageEncoder"/> (ResNet-18 when none is recorded).</summary>
    /// <exception cref="FileNotFoundException">A recorded encoder file was moved or deleted (the message names it).</exception>
    /// <exception cref="InvalidDataException">A recorded encoder file changed since training.</exception>
    /// <exception cref="NotSupportedException">Only an identity is recorded and it is not a packaged encoder.</exception>
    public IImageEncoder OpenImageEncoder()
        => ImageEncoderSource is { } s ? s.OpenImage(Where) : PackagedEncoders.OpenImageEncoder(ImageEncoder);

    /// <summary>Opens the text encoder the model was trained on (as <see cref="OpenImageEncoder"/>).</summary>
    /// <exception cref="FileNotFoundException">A recorded encoder file was moved or deleted.</exception>
    /// <exception cref="InvalidDataException">A recorded encoder file changed since training.</exception>
    /// <exception cref="NotSupportedException">Only an identity is recorded and it is not a packaged encoder.</exception>
    public ITextEncoder OpenTextEncoder()
        => TextEncoderSource is { } s ? s.OpenText(Where) : PackagedEncoders.OpenTextEncoder(TextEncoder);

    private string Where => BundleDirectory is null ? "the aligned model" : Path.Combine(BundleDirectory, ManifestFile);

    /// <summary>Short name for reports and the bundle manifest; "projector" unless set.</summary>
    public string Name { get; set; } = "projector";
    /// <summary>Width E of the shared space (<see cref="ProjectorOptions.EmbeddingDimension"/>).</summary>
    public int EmbeddingDimension => Projector.EmbeddingDimension;
    /// <summary>True when the image side has a local (per-token) piece, so <see cref="ProjectImages"/> needs image
    /// tokens [n, tokens, image token dim] (docs/method.md section 3.3).</summary>
    public bool UsesImageTokens => Projector.UsesImageTokens;
    /// <summary>True when the text side has a local (per-token) piece, so <see cref="ProjectTexts"/> needs text
    /// tokens with their lengths (docs/method.md section 3.3).</summary>
    public bool UsesTextTokens => Projector.UsesTextTokens;
    /// <summary>Learned temperature tau (in [0.001, 0.5] after training).</summary>
    public float Temperature => Network.Temperature.item<float>();
    /// <summary>1 / tau.</summary>
    public float LogitScale => 1f / Temperature;
    /// <summary>Trainable parameters including the temperature.</summary>
    public long ParameterCount => Network.ParameterCount;

    /// <inheritdoc/>
    public EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null)
    {
        ThrowIfDisposed();
        CheckImageInput(pooled, tokens);
        return Project(pooled.Rows, (start, count) =>
        {
            using var p = Slice(pooled, start, count);
            Tensor? t = null, m = null;
            if (UsesImageTokens) (t, m) = Tokens(tokens!, start, count, out _);
            using (t) using (m) return Network.ForwardImage(p, t);
        });
    }

    /// <inheritdoc/>
    public EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null)
    {
        ThrowIfDisposed();
        CheckTextInput(pooled, tokens);
        return Project(pooled.Rows, (start, count) =>
        {
            using var p = Slice(pooled, start, count);
            Tensor? t = null, m = null;
            if (UsesTextTokens) (t, m) = Tokens(tokens!, start, count, out _);
            using (t) using (m) return Network.ForwardText(p, t, m);
        });
    }

    private EmbeddingMatrix Project(int rows, Func<int, int, Tensor> forward)
    {
        var result = new float[checked(rows * EmbeddingDimension)];
        lock (_gate)
        {
            ThrowIfDisposed();
            bool wasTraining = Network.training;
            Network.eval();
            try
            {
                using var noGrad = no_grad();
                for (int start = 0; start < rows; start += ProjectBatch)
                {
                    int count = Math.Min(ProjectBatch, rows - start);
                    using var z = forward(start, count);
                    z.data<float>().CopyTo(result, start * EmbeddingDimension);
                }
            }
            finally { if (wasTraining) Network.train(); }
        }
        return new EmbeddingMatrix(result, rows, EmbeddingDimension);
    }

    // A whole matrix / token tensor goes to torch without an intermediate managed copy (a training batch is one:
    // token batches are ~25 MB, and a copy per step is a large-object allocation per step).
    internal static Tensor Slice(EmbeddingMatrix m, int start, int count)
        => start == 0 && (long)count * m.Columns == m.Data.Length
            ? tensor(m.Data, new long[] { count, m.Columns })
            : tensor(m.Data.AsSpan(start * m.Columns, count * m.Columns).ToArray(), new long[] { count, m.Columns });

    /// <summary>Tokens of items [start, start+count) as a [count, T, d] tensor (T = longest selected) and a [count, T] mask.</summary>
    internal static (Tensor Tokens, Tensor Mask) Tokens(TokenTensor t, int start, int count, out int maxLen)
    {
        maxLen = 0;
        for (int i = start; i < start + count; i++) maxLen = Math.Max(maxLen, t.Lengths[i]);
        maxLen = Math.Max(maxLen, 1);
        bool whole = start == 0 && count == t.Count && maxLen == t.MaxTokens && (long)count * maxLen * t.Dimension == t.Data.Length;
        for (int i = 0; whole && i < count; i++) whole = t.Lengths[i] == maxLen; // no padding: the data is already the tensor
        // from_array shares (pins) the array instead of copying it: a token batch is tens of MB (256 x 49 x 512 floats is
        // 25 MB), and the copy plus a fresh native buffer per step showed up in token-mode training.
        if (whole)
            return (from_array(t.Data).reshape(count, maxLen, t.Dimension), ones(new long[] { count, maxLen }));
        var data = new float[checked(count * maxLen * t.Dimension)];
        var mask = new float[count * maxLen];
        for (int i = 0; i < count; i++)
        {
            int len = t.Lengths[start + i];
            t.Item(start + i).Slice(0, len * t.Dimension).CopyTo(data.AsSpan(i * maxLen * t.Dimension));
            mask.AsSpan(i * maxLen, len).Fill(1f);
        }
        return (from_array(data).reshape(count, maxLen, t.Dimension), tensor(mask, new long[] { count, maxLen }));
    }

    internal void CheckImageInput(EmbeddingMatrix pooled, TokenTensor? tokens)
    {
        ArgumentNullException.ThrowIfNull(pooled);
        if (pooled.Columns != ImageDimension)
            throw new ArgumentException($"Image embeddings are {pooled.Columns}-d, but this projector was trained on {ImageDimension}-d image embeddings.", nameof(pooled));
        if (!UsesImageTokens) return;
        if (tokens is null)
            throw new ArgumentException($"This projector (ImageLocal = {Projector.ImageLocal}) needs image token features; none were given.", nameof(tokens));
        if (tokens.Dimension != ImageTokenDimension)
            throw new ArgumentException($"Image tokens are {tokens.Dimension}-d, but this projector expects {ImageTokenDimension}-d image tokens.", nameof(tokens));
        if (tokens.Count != pooled.Rows)
            throw new ArgumentException($"Image tokens hold {tokens.Count} items but the pooled matrix has {pooled.Rows} rows.", nameof(tokens));
        for (int i = 0; i < tokens.Count; i++)
            if (tokens.Lengths[i] != tokens.MaxTokens)
                throw new ArgumentException($"Image item {i} has {tokens.Lengths[i]} tokens but others have {tokens.MaxTokens}: every image must have the same token count (patch grid).", nameof(tokens));
    }

    internal void CheckTextInput(EmbeddingMatrix pooled, TokenTensor? tokens)
    {
        ArgumentNullException.ThrowIfNull(pooled);
        if (pooled.Columns != TextDimension)
            throw new ArgumentException($"Text embeddings are {pooled.Columns}-d, but this projector was trained on {TextDimension}-d text embeddings.", nameof(pooled));
        if (!UsesTextTokens) return;
        if (tokens is null)
            throw new ArgumentException($"This projector (TextLocal = {Projector.TextLocal}) needs text token features; none were given.", nameof(tokens));
        if (tokens.Dimension != TextTokenDimension)
            throw new ArgumentException($"Text tokens are {tokens.Dimension}-d, but this projector expects {TextTokenDimension}-d text tokens.", nameof(tokens));
        if (tokens.Count != pooled.Rows)
            throw new ArgumentException($"Text tokens hold {tokens.Count} items but the pooled matrix has {pooled.Rows} rows.", nameof(tokens));
    }

    /// <inheritdoc/>
    public byte[] ExportImageProjectorOnnx(ImageTokenLayout tokenLayout = ImageTokenLayout.TokensByDim)
    {
        lock (_gate) { ThrowIfDisposed(); return ProjectorOnnxExporter.ExportImage(this, tokenLayout); }
    }

    /// <inheritdoc/>
    public byte[] ExportTextProjectorOnnx()
    {
        lock (_gate) { ThrowIfDisposed(); return ProjectorOnnxExporter.ExportText(this); }
    }

    /// <summary>The weights in TorchSharp's module.save format.</summary>
    public byte[] GetWeights()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            var ms = new MemoryStream();
            Network.save(ms); // closes the stream; ToArray still works
            return ms.ToArray();
        }
    }

    /// <summary>Replaces the weights with bytes from <see cref="GetWeights"/> of a model of the same architecture.</summary>
    /// <exception cref="InvalidDataException">The bytes do not fit this architecture (message says which).</exception>
    public void SetWeights(byte[] weights, string source = "weights")
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            try { Network.load(new MemoryStream(weights, writable: false)); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or EndOfStreamException or NotImplementedException)
            {
                throw new InvalidDataException($"{source} do not match the projector architecture ({Describe()}): {e.Message}", e);
            }
        }
    }

    private string Describe() => $"image {ImageDimension}-d/{ImageTokenDimension?.ToString() ?? "-"} tokens, text {TextDimension}-d/{TextTokenDimension?.ToString() ?? "-"} tokens, " +
        $"{Projector.ImageLocal}/{Projector.ImageGlobal}/{Projector.TextLocal}/{Projector.TextGlobal}, E={EmbeddingDimension}";

    /// <summary>
    /// Writes the bundle directory: alignment.json (format version, options, encoder identities, widths, temperature,
    /// training summary, SHA-256 of each file), weights.bin, image_projector.onnx, text_projector.onnx. Atomic: written
    /// to a sibling temp directory, then renamed over <paramref name="directory"/> (an existing bundle is replaced).
    /// </summary>
    /// <exception cref="InvalidDataException">A weight is NaN or infinite (nothing is written).</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        CheckFinite();
        directory = Path.GetFullPath(directory.TrimEnd(Path.DirectorySeparatorChar));
        var parent = Path.GetDirectoryName(directory)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(directory)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var files = new Dictionary<string, byte[]>
            {
                [WeightsFile] = GetWeights(),
                [ImageOnnxFile] = ExportImageProjectorOnnx(),
                [TextOnnxFile] = ExportTextProjectorOnnx(),
            };
            foreach (var (name, bytes) in files) AtomicFile.WriteAllBytes(Path.Combine(temp, name), bytes);
            var manifest = new BundleManifest
            {
                FormatVersion = FormatVersion, Name = Name, Projector = Projector,
                ImageDimension = ImageDimension, TextDimension = TextDimension,
                ImageTokenDimension = ImageTokenDimension, TextTokenDimension = TextTokenDimension,
                Temperature = Temperature, ParameterCount = ParameterCount,
                ImageEncoder = ImageEncoder, TextEncoder = TextEncoder, Training = Training,
                ImageEncoderSource = ImageEncoderSource, TextEncoderSource = TextEncoderSource,
                Files = files.ToDictionary(kv => kv.Key, kv => Convert.ToHexStringLower(SHA256.HashData(kv.Value))),
            };
            AtomicFile.WriteAllText(Path.Combine(temp, ManifestFile), JsonSerializer.Serialize(manifest, AlignmentJson.Options));
            string? old = null;
            if (Directory.Exists(directory))
            {
                old = Path.Combine(parent, $".{Path.GetFileName(directory)}.old-{Guid.NewGuid():N}");
                Directory.Move(directory, old);
            }
            Directory.Move(temp, directory);
            if (old != null) Directory.Delete(old, recursive: true);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    /// <summary>Loads a bundle written by <see cref="Save"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">alignment.json or a file it lists is missing (named).</exception>
    /// <exception cref="InvalidDataException">Unknown format version, a file whose SHA-256 differs from the manifest,
    /// or weights whose shapes do not match the recorded widths.</exception>
    public static AlignedModel Load(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Aligned-model bundle '{directory}' does not exist.");
        var manifestPath = Path.Combine(directory, ManifestFile);
        // `mlnet-align train --out DIR` writes the bundle to DIR/model: accept DIR too.
        if (!File.Exists(manifestPath) && File.Exists(Path.Combine(directory, "model", ManifestFile)))
        {
            directory = Path.Combine(directory, "model");
            manifestPath = Path.Combine(directory, ManifestFile);
        }
        if (!File.Exists(manifestPath))
            throw new FileNotFoundException($"'{directory}' is not an aligned-model bundle: {ManifestFile} is missing (nor is there a '{Path.Combine(directory, "model")}' bundle, where `train --out` writes it).", manifestPath);
        BundleManifest manifest;
        try { manifest = JsonSerializer.Deserialize<BundleManifest>(File.ReadAllText(manifestPath), AlignmentJson.Options) ?? throw new JsonException("null"); }
        catch (JsonException e) { throw new InvalidDataException($"{manifestPath} is not valid bundle JSON: {e.Message}", e); }
        if (manifest.FormatVersion != FormatVersion)
            throw new InvalidDataException($"{manifestPath} has bundle format version {manifest.FormatVersion}; this library reads version {FormatVersion}.");
        if (manifest.Projector is null) throw new InvalidDataException($"{manifestPath} has no projector options.");
        foreach (var (name, sha) in manifest.Files)
        {
            var path = Path.Combine(directory, name);
            if (!File.Exists(path)) throw new FileNotFoundException($"Bundle file '{name}' listed in {ManifestFile} is missing from '{directory}'.", path);
            var actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
            if (actual != sha) throw new InvalidDataException($"Bundle file '{path}' is corrupt or was changed: SHA-256 {actual}, manifest says {sha}.");
        }
        if (!manifest.Files.ContainsKey(WeightsFile)) throw new FileNotFoundException($"{ManifestFile} in '{directory}' lists no {WeightsFile}.");
        var model = new AlignedModel(manifest.Projector, manifest.ImageDimension, manifest.TextDimension,
            manifest.ImageTokenDimension, manifest.TextTokenDimension, manifest.Temperature)
        {
            Name = manifest.Name ?? "projector", ImageEncoder = manifest.ImageEncoder, TextEncoder = manifest.TextEncoder, Training = manifest.Training,
            ImageEncoderSource = manifest.ImageEncoderSource, TextEncoderSource = manifest.TextEncoderSource,
            BundleDirectory = Path.GetFullPath(directory),
        };
        try { model.SetWeights(File.ReadAllBytes(Path.Combine(directory, WeightsFile)), Path.Combine(directory, WeightsFile)); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// <summary>Refuses weights holding a NaN or an infinity: such a model scores every query alike and must never
    /// become a bundle.</summary>
    /// <exception cref="InvalidDataException">A weight is NaN or infinite (the tensor is named).</exception>
    private void CheckFinite()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            foreach (var (name, prm) in _network.named_parameters())
                if (!isfinite(prm).all().item<bool>())
                    throw new InvalidDataException($"Model '{Name}' holds NaN or infinite weights ('{name}'); a non-finite model is never saved (training diverged: lower the learning rate).");
        }
    }

    /// <summary>Releases the TorchSharp module's native tensors; afterwards every method that needs them (projecting,
    /// exporting, saving, weights, <see cref="Network"/>, <see cref="Temperature"/>) throws
    /// <see cref="ObjectDisposedException"/>. Idempotent.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _network.Dispose();
        }
    }

    /// <summary>alignment.json contents (the bundle's on-disk format; read through <see cref="Load"/>).</summary>
    internal sealed record BundleManifest
    {
        public int FormatVersion { get; init; }
        public string? Name { get; init; }
        public ProjectorOptions? Projector { get; init; }
        public int ImageDimension { get; init; }
        public int TextDimension { get; init; }
        public int? ImageTokenDimension { get; init; }
        public int? TextTokenDimension { get; init; }
        public float Temperature { get; init; }
        public long ParameterCount { get; init; }
        public EncoderIdentity? ImageEncoder { get; init; }
        public EncoderIdentity? TextEncoder { get; init; }
        public TrainingSummary? Training { get; init; }
        /// <summary>Complete image encoder options with file paths and SHA-256 (null: packaged or not recorded).</summary>
        public EncoderSource? ImageEncoderSource { get; init; }
        /// <summary>Complete text encoder options with file paths and SHA-256.</summary>
        public EncoderSource? TextEncoderSource { get; init; }
        public Dictionary<string, string> Files { get; init; } = new();
    }
}
