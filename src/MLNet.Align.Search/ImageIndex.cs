using System.Globalization;
using System.Security.Cryptography;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;

namespace MLNet.Align.Search;

/// <summary>The index was built with another model than the one it is opened with.</summary>
public sealed class IndexModelMismatchException(string message) : InvalidOperationException(message);

/// <summary>
/// An image index over an <see cref="AlignedModel"/>: a folder holding a SQLite catalog (one row per image file: path,
/// content SHA-256, size, last-write time, the frozen encoder's embedding and the aligned embedding) and, from
/// <see cref="ImageIndexOptions.ExactBelow"/> images on, a USearch HNSW graph over the aligned embeddings
/// (docs/search.md). <see cref="Update(IndexSource, IProgress{IndexProgress}, CancellationToken)"/> indexes a folder tree incrementally; <see cref="Search(SearchQuery, SearchOptions)"/> answers text, image,
/// item and mixed queries with filters. The index records the model's fingerprint (encoder SHA-256s and projector
/// weights) and refuses another model, except to re-project from the stored encoder embeddings.
/// Searches may run concurrently with each other and with an <see cref="Update(IndexSource, IProgress{IndexProgress}, CancellationToken)"/> of the same instance.
/// </summary>
public sealed partial class ImageIndex : IDisposable
{
    /// <summary>Version of the folder's layout; another version is refused with a clear error.</summary>
    public const int FormatVersion = 1;

    private readonly AlignedEmbedder _embedder;
    private readonly IndexCatalog _catalog;
    private volatile EmbeddedVectors _vectors;
    private bool _disposed;

    private ImageIndex(string directory, AlignedEmbedder embedder, IndexCatalog catalog, ImageIndexOptions options)
    {
        Directory = directory; _embedder = embedder; _catalog = catalog; Options = options;
        _vectors = EmbeddedVectors.Load(catalog, directory, embedder.Model.EmbeddingDimension, options);
    }

    private IImageEncoder _imageEncoder => _embedder.Image;
    /// <summary>The aligned model the index serves.</summary>
    public AlignedModel Model => _embedder.Model;

    /// <summary>The index folder.</summary>
    public string Directory { get; }
    /// <summary>The options this instance runs with.</summary>
    public ImageIndexOptions Options { get; }
    /// <summary>The aligned model's fingerprint recorded in the index (lower-case hex SHA-256).</summary>
    public string ModelFingerprint => _catalog.GetMeta("model_fingerprint")!;
    /// <summary>Images in the index.</summary>
    public int Count => _vectors.Count;
    /// <summary>Width of the aligned embeddings.</summary>
    public int Dimension => Model.EmbeddingDimension;
    /// <summary>True when queries walk the HNSW graph (else every query is an exact scan).</summary>
    public bool UsesApproximateIndex => _vectors.HasAnn;

    /// <summary>Opens the index in <paramref name="directory"/>, creating it when absent, for <paramref name="model"/>.</summary>
    /// <param name="directory">The index folder.</param>
    /// <param name="model">The aligned model (not disposed by the index). Its image projector must be pooled (no token piece).</param>
    /// <param name="options">Index options (default: fp16 HNSW from 10,000 images on).</param>
    /// <param name="reproject">When the index was built with another projector over the same image encoder, recompute
    /// every aligned embedding from the stored encoder embeddings (no image is re-encoded) and adopt this model.</param>
    /// <exception cref="IndexModelMismatchException">The index was built with another model (and not <paramref name="reproject"/>),
    /// or with another image encoder (re-projection cannot help: index into a new folder).</exception>
    /// <exception cref="InvalidDataException">The folder holds a catalog of another format version, or a corrupt one.</exception>
    /// <exception cref="NotSupportedException">The model's image projector needs image tokens.</exception>
    public static ImageIndex Open(string directory, AlignedModel model, ImageIndexOptions? options = null, bool reproject = false)
        => Open(directory, model, false, options, reproject);

    /// <summary>Opens an index that exists, with <paramref name="modelDirectory"/> or else the model bundle recorded when
    /// the index was created.</summary>
    /// <exception cref="DirectoryNotFoundException">No index in <paramref name="directory"/>, or the model folder is gone.</exception>
    /// <exception cref="IndexModelMismatchException">The model is not the one the index was built with.</exception>
    public static ImageIndex OpenExisting(string directory, string? modelDirectory = null, ImageIndexOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!IndexCatalog.Exists(directory)) throw new DirectoryNotFoundException($"No image index in {directory} (expected {IndexCatalog.FileName}; build one with 'mlnet-align index').");
        if (modelDirectory is null)
        {
            using (var c = IndexCatalog.Open(directory, readOnly: true)) modelDirectory = c.GetMeta("model_directory");
            if (modelDirectory is null) throw new ArgumentException($"The index in {directory} records no model folder; give the model.");
            if (!System.IO.Directory.Exists(modelDirectory))
                throw new DirectoryNotFoundException($"The model the index in {directory} was built with ({modelDirectory}) is gone; give the model folder.");
        }
        return Open(directory, modelDirectory, options);
    }

    /// <summary>Opens the index with the model bundle at <paramref name="modelDirectory"/> (owned and disposed by the index).</summary>
    /// <inheritdoc cref="Open(string, AlignedModel, ImageIndexOptions?, bool)"/>
    public static ImageIndex Open(string directory, string modelDirectory, ImageIndexOptions? options = null, bool reproject = false)
    {
        var model = AlignedModel.Load(modelDirectory);
        try { return Open(directory, model, true, options, reproject); }
        catch { model.Dispose(); throw; }
    }

    private static ImageIndex Open(string directory, AlignedModel model, bool ownsModel, ImageIndexOptions? options, bool reproject)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(model);
        options ??= new ImageIndexOptions();
        options.Validate();
        directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(directory);
        var embedder = new AlignedEmbedder(model, ownsModel);
        var imageEncoder = embedder.Image;
        IndexCatalog? catalog = null;
        try
        {
            catalog = IndexCatalog.Open(directory);
            string fingerprint = Fingerprint(model, imageEncoder.Identity);
            string? version = catalog.GetMeta("format_version");
            if (version is null)
            {
                using var tx = catalog.Begin();
                catalog.SetMeta("format_version", FormatVersion.ToString(CultureInfo.InvariantCulture), tx);
                WriteModelMeta(catalog, model, imageEncoder.Identity, fingerprint, tx);
                catalog.SetMeta("generation", "0", tx);
                tx.Commit();
            }
            else if (version != FormatVersion.ToString(CultureInfo.InvariantCulture))
                throw new InvalidDataException($"The index at {directory} has format version {version}; this build reads version {FormatVersion}. Build a new index into another folder.");
            else if (catalog.GetMeta("model_fingerprint") != fingerprint)
            {
                string recordedEncoder = catalog.GetMeta("image_encoder_sha256") ?? "?";
                string recordedName = catalog.GetMeta("model_name") ?? "?";
                if (recordedEncoder != imageEncoder.Identity.Sha256)
                    throw new IndexModelMismatchException($"The index at {directory} was built with image encoder {catalog.GetMeta("image_encoder")} (SHA-256 {Short(recordedEncoder)}), but the model '{model.Name}' uses {imageEncoder.Identity.Name} (SHA-256 {Short(imageEncoder.Identity.Sha256)}): its stored embeddings cannot be re-projected. Index into a new folder.");
                if (!reproject)
                    throw new IndexModelMismatchException($"The index at {directory} was built with model '{recordedName}' (fingerprint {Short(catalog.GetMeta("model_fingerprint")!)}), not with '{model.Name}' (fingerprint {Short(fingerprint)}). Open it with that model, or re-project it to this one (same image encoder, no image re-encoded): mlnet-align index --reproject.");
                Reproject(catalog, directory, model, imageEncoder.Identity, fingerprint, options);
            }
            if (catalog.GetMeta("dimension") is { } d && d != model.EmbeddingDimension.ToString(CultureInfo.InvariantCulture))
                throw new InvalidDataException($"The index at {directory} stores {d}-dimensional vectors but the model gives {model.EmbeddingDimension}.");
            return new ImageIndex(directory, embedder, catalog, options);
        }
        catch
        {
            catalog?.Dispose();
            embedder.Dispose();
            throw;
        }
    }

    private static void WriteModelMeta(IndexCatalog catalog, AlignedModel model, EncoderIdentity image, string fingerprint, Microsoft.Data.Sqlite.SqliteTransaction tx)
    {
        catalog.SetMeta("model_fingerprint", fingerprint, tx);
        catalog.SetMeta("model_name", model.Name, tx);
        if (model.BundleDirectory is { } bundle) catalog.SetMeta("model_directory", Path.GetFullPath(bundle), tx);
        catalog.SetMeta("image_encoder", image.Name, tx);
        catalog.SetMeta("image_encoder_sha256", image.Sha256, tx);
        catalog.SetMeta("encoder_dimension", image.Dimension.ToString(CultureInfo.InvariantCulture), tx);
        catalog.SetMeta("dimension", model.EmbeddingDimension.ToString(CultureInfo.InvariantCulture), tx);
    }

    /// <summary>The fingerprint an index records for <paramref name="model"/>: SHA-256 over both encoders' SHA-256,
    /// the aligned width and the projector weights.</summary>
    public static string Fingerprint(AlignedModel model, EncoderIdentity imageEncoder)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        string text = model.TextEncoderSource?.Identity.Sha256 ?? model.TextEncoder?.Sha256 ?? "no-text-encoder";
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"mlnet-align-index|{imageEncoder.Sha256}|{text}|{model.EmbeddingDimension}|"));
        sha.AppendData(model.GetWeights());
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;

    private static void Reproject(IndexCatalog catalog, string directory, AlignedModel model, EncoderIdentity image, string fingerprint, ImageIndexOptions options)
    {
        using var writer = OutputLock.Acquire(directory);
        long gen = catalog.Generation + 1;
        var rows = catalog.EncoderVectors().ToList();
        using var tx = catalog.Begin();
        const int chunk = 4096;
        for (int s = 0; s < rows.Count; s += chunk)
        {
            int n = Math.Min(chunk, rows.Count - s);
            var pooled = new float[checked(n * image.Dimension)];
            for (int i = 0; i < n; i++)
            {
                if (rows[s + i].Encoder.Length != image.Dimension)
                    throw new InvalidDataException($"Catalog item {rows[s + i].Id} stores an encoder embedding of {rows[s + i].Encoder.Length} values, expected {image.Dimension}.");
                rows[s + i].Encoder.CopyTo(pooled, i * image.Dimension);
            }
            var aligned = model.ProjectImages(new EmbeddingMatrix(pooled, n, image.Dimension));
            FiniteCheck.Require(aligned, $"the re-projected embeddings of model '{model.Name}'");
            for (int i = 0; i < n; i++) catalog.SetAligned(tx, rows[s + i].Id, aligned.Row(i).ToArray(), gen);
        }
        WriteModelMeta(catalog, model, image, fingerprint, tx);
        catalog.SetMeta("generation", gen.ToString(CultureInfo.InvariantCulture), tx);
        tx.Commit();
        EmbeddedVectors.Sync(catalog, directory, model.EmbeddingDimension, options, forceRebuild: true);
    }

    /// <summary>The unit query vector [<see cref="Dimension"/>] of <paramref name="query"/> in the aligned space.</summary>
    /// <exception cref="ArgumentException">The query has no parts, its weights cancel out, or an item part names a path
    /// that is not in the index.</exception>
    /// <exception cref="FileNotFoundException">An image part's file does not exist.</exception>
    /// <exception cref="InvalidDataException">An image part cannot be decoded (truncated, not an image, over the pixel budget).</exception>
    public float[] Embed(SearchQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        ThrowIfDisposed();
        if (query.Parts.Count == 0) throw new ArgumentException("The query has no parts: give at least one text, image or item.", nameof(query));
        var sum = new float[Dimension];
        var vectors = _vectors;
        foreach (var part in query.Parts)
        {
            float[] v = part.Kind switch
            {
                QueryPartKind.Text => EmbedText(part.Value!),
                QueryPartKind.ImageFile => EmbedImageFile(part.Value!),
                QueryPartKind.ImageBytes => EmbedImageBytes(part.Bytes!),
                _ => vectors.RowOfPath(Path.GetFullPath(part.Value!)) is var row and >= 0
                    ? vectors.Vector(row).ToArray()
                    : throw new ArgumentException($"'{part.Value}' is not an item of the index at {Directory}."),
            };
            Normalize(v);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(v, part.Weight, sum, sum);
        }
        float norm = System.Numerics.Tensors.TensorPrimitives.Norm(sum);
        if (!(norm > 1e-6f)) throw new ArgumentException($"The query's parts cancel out (their weighted sum has norm {norm}): {query}.", nameof(query));
        System.Numerics.Tensors.TensorPrimitives.Divide(sum, norm, sum);
        return sum;
    }

    private float[] EmbedText(string text) => _embedder.Texts([text])[0];
    private float[] EmbedImageFile(string path) => _embedder.ImageFiles([path])[0];
    private float[] EmbedImageBytes(byte[] bytes) => _embedder.ImageBytes(bytes);

    private static void Normalize(float[] v)
    {
        float n = System.Numerics.Tensors.TensorPrimitives.Norm(v);
        if (n > 0) System.Numerics.Tensors.TensorPrimitives.Divide(v, n, v);
    }

    /// <summary>The best hits for <paramref name="query"/>, best first.</summary>
    /// <param name="query">Texts, images and items, weighted.</param>
    /// <param name="options">k, folder and date filters, the relative cut-off, exact search.</param>
    /// <exception cref="ArgumentException">See <see cref="Embed"/>; or an empty date range.</exception>
    /// <exception cref="ArgumentOutOfRangeException">k &lt; 1 or a negative cut-off.</exception>
    public IReadOnlyList<SearchHit> Search(SearchQuery query, SearchOptions? options = null)
        => Search(Embed(query), options);

    /// <summary>The best hits for a unit query vector [<see cref="Dimension"/>] in the aligned space.</summary>
    public IReadOnlyList<SearchHit> Search(float[] queryVector, SearchOptions? options = null)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(queryVector);
        options ??= new SearchOptions();
        options.Validate();
        if (queryVector.Length != Dimension) throw new ArgumentException($"The query vector has {queryVector.Length} values, expected {Dimension}.", nameof(queryVector));
        var vectors = _vectors;
        var filter = Filter(vectors, options);
        var hits = vectors.Search(queryVector, options.K, filter, options.Exact);
        if (options.WithinOfBest is float w && hits.Count > 0)
        {
            float best = hits[0].Score;
            hits = hits.Where(h => h.Score >= best - w).ToList();
        }
        return hits.Select(h => vectors.Hit(h.Row, h.Score)).ToList();
    }

    private static Func<int, bool>? Filter(EmbeddedVectors v, SearchOptions o)
    {
        string? folder = o.Folder is null ? null : Path.TrimEndingDirectorySeparator(Path.GetFullPath(o.Folder)) + Path.DirectorySeparatorChar;
        long? after = o.After?.ToUnixTimeMilliseconds(), before = o.Before?.ToUnixTimeMilliseconds();
        if (folder is null && after is null && before is null) return null;
        return row => (folder is null || v.InFolder(row, folder))
            && (after is null || v.MtimeMs(row) >= after) && (before is null || v.MtimeMs(row) < before);
    }

    /// <summary>The catalog generation: incremented by every update, merge and re-projection (external backends record
    /// the generation they were synchronised to).</summary>
    public long Generation => _catalog.Generation;

    /// <summary>Items written after <paramref name="generation"/> (all items for -1), ordered by id, with their aligned
    /// vectors [<see cref="Dimension"/>] — what an external backend must upsert.</summary>
    public IEnumerable<IndexedItem> ItemsSince(long generation = -1)
    {
        ThrowIfDisposed();
        foreach (var (e, v) in _catalog.Aligned(generation))
            yield return new IndexedItem(e.Id, e.Path, e.Sha256, e.Size, DateTimeOffset.FromUnixTimeMilliseconds(e.MtimeMs), v);
    }

    /// <summary>Ids removed after <paramref name="generation"/> — what an external backend must delete. Ids are never reused.</summary>
    public IReadOnlyList<long> RemovedSince(long generation) { ThrowIfDisposed(); return _catalog.RemovedAfter(generation); }

    /// <summary>The path of item <paramref name="id"/>, or null when no such item is indexed.</summary>
    public string? PathOf(long id) => _vectors.PathOf(id);

    private void Reload() => _vectors = EmbeddedVectors.Load(_catalog, Directory, Dimension, Options);

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _vectors.Dispose();
        _embedder.Dispose();
        _catalog.Dispose();
    }
}
