using System.Text.Json;

namespace MLNet.Align.Embeddings;

/// <summary>
/// An on-disk store of encoded image-caption pairs, written by <see cref="EmbeddingPipeline"/>: a folder holding
/// <c>manifest.json</c> (see <see cref="EmbeddingStoreManifest"/>) and shard files <c>shard-NNNNN.bin</c> with pooled
/// image [images, Di] and text [rows, Dt] embeddings, optional image tokens [images, T, dti] and text tokens
/// [rows, L, dtt] + lengths, and per-row metadata (pair index, line, image path, caption, extra columns).
/// Rows are numbered 0..<see cref="Rows"/>-1 in shard order; within a shard, rows are grouped by image (first
/// appearance order), so an image with several captions is stored once.
/// Every file is written atomically (temp + rename) and the manifest last, so a store is either complete, partial and
/// resumable, or absent. A store is keyed (<see cref="EmbeddingStoreKey"/>): it is never reused for a different request;
/// keep one folder per key (<see cref="CacheDirectory"/>) to cache several.
/// </summary>
public sealed class EmbeddingStore
{
    /// <summary>Version of the folder layout and shard format.</summary>
    public const int FormatVersion = 1;
    /// <summary>Name of the manifest file.</summary>
    public const string ManifestFileName = "manifest.json";

    private readonly long[] _firstRow;
    // 1 once a shard's file has been hashed and matched the manifest's SHA-256 (each shard is verified on its first load).
    private readonly int[] _verified;

    private EmbeddingStore(string directory, EmbeddingStoreManifest manifest)
    {
        Directory = directory;
        Manifest = manifest;
        _firstRow = manifest.Shards.Select(s => s.FirstRow!.Value).ToArray();
        _verified = new int[manifest.Shards.Count];
    }

    /// <summary>Absolute path of the store folder.</summary>
    public string Directory { get; }
    /// <summary>The parsed manifest.</summary>
    public EmbeddingStoreManifest Manifest { get; }
    /// <summary>The store's key.</summary>
    public EmbeddingStoreKey Key => Manifest.Key;
    /// <summary>Stored rows (pairs; images for an image-only store).</summary>
    public long Rows => Manifest.Rows;
    /// <summary>Whether text embeddings are stored (false for an image-only store).</summary>
    public bool HasText => Manifest.Contents.TextPooled;
    /// <summary>Whether image and text tokens are stored.</summary>
    public bool HasTokens => Manifest.Contents.ImageTokens && Manifest.Contents.TextTokens;
    /// <summary>Shards in row order.</summary>
    public IReadOnlyList<ShardEntry> Shards => Manifest.Shards;

    /// <summary>The cache sub-folder for a key: <c>&lt;cacheRoot&gt;/&lt;key.ShortHash&gt;</c>.</summary>
    public static string CacheDirectory(string cacheRoot, EmbeddingStoreKey key) => Path.Combine(Path.GetFullPath(cacheRoot), key.ShortHash);

    /// <summary>Whether <paramref name="directory"/> holds a complete store (optionally of the given key).</summary>
    public static bool IsComplete(string directory, EmbeddingStoreKey? key = null)
    {
        var m = TryReadManifest(directory);
        return m != null && m.Status == "complete" && (key == null || m.KeyHash == key.Hash);
    }

    /// <summary>Opens a complete store.</summary>
    /// <param name="directory">The store folder.</param>
    /// <param name="expectedKey">When given, the store must have been computed for exactly this key.</param>
    /// <param name="verifyChecksums">Also re-hash every shard file (reads the whole store once).</param>
    /// <exception cref="DirectoryNotFoundException">No store there.</exception>
    /// <exception cref="InvalidOperationException">The store is partial (re-run the embedding to resume it).</exception>
    /// <exception cref="EmbeddingStoreMismatchException">The key differs (the message lists what differs).</exception>
    /// <exception cref="InvalidDataException">A shard file is missing, has the wrong size or checksum.</exception>
    public static EmbeddingStore Open(string directory, EmbeddingStoreKey? expectedKey = null, bool verifyChecksums = false)
    {
        string dir = Path.GetFullPath(directory);
        var m = TryReadManifest(dir) ?? throw new DirectoryNotFoundException($"No embedding store in {dir} ({ManifestFileName} not found).");
        if (expectedKey != null) ThrowIfMismatch(dir, m, expectedKey);
        if (m.Status != "complete")
            throw new InvalidOperationException($"The embedding store in {dir} is partial ({m.Shards.Count} of {m.ShardCount} shards): re-run the embedding with the same options to resume it.");
        m.Recount();
        if (m.Shards.Count != m.ShardCount || m.Shards.Any(s => s.FirstRow == null))
            throw new InvalidDataException($"{Path.Combine(dir, ManifestFileName)}: marked complete but lists {m.Shards.Count} of {m.ShardCount} shards.");
        foreach (var s in m.Shards)
        {
            string why = CheckShard(dir, s, verifyChecksums);
            if (why.Length > 0) throw new InvalidDataException(why + " Re-run the embedding with the same options to rebuild it.");
        }
        return new EmbeddingStore(dir, m);
    }

    /// <summary>An empty string when the shard file is present and intact, else why not.</summary>
    internal static string CheckShard(string dir, ShardEntry s, bool verifyChecksum)
    {
        string path = Path.Combine(dir, s.File);
        var info = new FileInfo(path);
        if (!info.Exists) return $"Shard {s.Index} ({path}) is missing.";
        if (info.Length != s.Bytes) return $"Shard {s.Index} ({path}) has {info.Length} bytes, the manifest records {s.Bytes}.";
        if (verifyChecksum)
        {
            string sha = ShardFile.ComputeSha256(path);
            if (sha != s.Sha256) return $"Shard {s.Index} ({path}) has SHA-256 {sha}, the manifest records {s.Sha256}.";
        }
        return "";
    }

    internal static void ThrowIfMismatch(string dir, EmbeddingStoreManifest m, EmbeddingStoreKey requested)
    {
        if (m.KeyHash == requested.Hash) return;
        var diffs = m.Key.Differences(requested);
        throw new EmbeddingStoreMismatchException(
            $"The embedding store in {dir} was computed for a different request (key {m.KeyHash[..16]} vs requested {requested.ShortHash}): " +
            $"{(diffs.Count > 0 ? string.Join("; ", diffs) : "format version differs")}. It is never reused silently: choose another output folder " +
            "(e.g. one per key under a cache root) or delete this one.");
    }

    internal static EmbeddingStoreManifest? TryReadManifest(string directory)
    {
        string path = Path.Combine(directory, ManifestFileName);
        if (!File.Exists(path)) return null;
        EmbeddingStoreManifest? m;
        try { m = JsonSerializer.Deserialize<EmbeddingStoreManifest>(File.ReadAllBytes(path), StoreJson.Options); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid embedding store manifest: {e.Message}", e); }
        if (m == null || m.Format != "mlnet-align-embeddings" || m.Key == null)
            throw new InvalidDataException($"{path}: not an MLNet.Align embedding store manifest.");
        if (m.FormatVersion != FormatVersion)
            throw new InvalidDataException($"{path}: store format version {m.FormatVersion}, this library reads {FormatVersion}.");
        return m;
    }

    internal static void WriteManifest(string directory, EmbeddingStoreManifest m)
    {
        m.Recount();
        AtomicFile.WriteAllBytes(Path.Combine(directory, ManifestFileName), JsonSerializer.SerializeToUtf8Bytes(m, StoreJson.Options));
    }

    /// <summary>Total bytes of the manifest and shard files.</summary>
    public long SizeInBytes => Manifest.Shards.Sum(s => s.Bytes) + new FileInfo(Path.Combine(Directory, ManifestFileName)).Length;

    /// <summary>Resolves an image path as written in the pairs file against the pairs file's folder.</summary>
    public string ResolveImagePath(string raw)
        => Path.IsPathRooted(raw) ? raw : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Manifest.Input.PairsFile) ?? "", raw));

    /// <summary>Index of the shard holding store row <paramref name="row"/>.</summary>
    internal int ShardOf(long row)
    {
        if (row < 0 || row >= Rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"Row must be in [0, {Rows}).");
        int k = Array.BinarySearch(_firstRow, row);
        if (k < 0) k = ~k - 1;
        while (Manifest.Shards[k].Rows == 0) k++; // not reached for a valid row, kept for empty shards
        return k;
    }

    internal long FirstRowOf(int shard) => _firstRow[shard];

    /// <summary>
    /// Reads a shard. The first load of each shard (per opened store) hashes the whole file and compares it with the
    /// manifest's SHA-256, so a shard edited or corrupted after it was written is refused with its name; every load
    /// checks the embeddings read are finite (a NaN row would look like a perfect match to every evaluator).
    /// </summary>
    /// <exception cref="InvalidDataException">The shard does not match the manifest, or is corrupt.</exception>
    /// <exception cref="InvalidDataException">A stored embedding is NaN or infinite (shard, row and line named).</exception>
    internal ShardData ReadShard(int shard, bool textPooled = true, bool imageTokens = false, bool textTokens = false, bool meta = false)
    {
        VerifyShard(shard);
        var entry = Manifest.Shards[shard];
        string path = Path.Combine(Directory, entry.File);
        var d = ShardFile.Read(path, textPooled && HasText, imageTokens, textTokens, meta);
        RequireFinite(shard, path, d);
        return d;
    }

    /// <summary>Hashes shard <paramref name="shard"/> once and compares it with the manifest.</summary>
    /// <exception cref="InvalidDataException">The file is missing, or its size or SHA-256 differs from the manifest.</exception>
    internal void VerifyShard(int shard)
    {
        if (Volatile.Read(ref _verified[shard]) == 1) return;
        string why = CheckShard(Directory, Manifest.Shards[shard], verifyChecksum: true);
        if (why.Length > 0)
            throw new InvalidDataException($"The embedding store in {Directory} does not match its manifest: {why} The shard was changed or " +
                "corrupted after it was written; re-run the embedding into a new folder to rebuild it.");
        Volatile.Write(ref _verified[shard], 1);
    }

    /// <summary>
    /// Compares every shard file with the manifest (presence, size, SHA-256): what <c>mlnet-align digest</c> reports.
    /// Reads the whole store once; shards found intact are not hashed again by later loads.
    /// </summary>
    /// <returns>One line per shard that does not match (empty when the store matches its manifest).</returns>
    public IReadOnlyList<string> VerifyAgainstManifest(CancellationToken cancellationToken = default)
    {
        var problems = new List<string>();
        for (int k = 0; k < Shards.Count; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string why = CheckShard(Directory, Shards[k], verifyChecksum: true);
            if (why.Length > 0) problems.Add(why);
            else Volatile.Write(ref _verified[k], 1);
        }
        return problems;
    }

    private void RequireFinite(int shard, string path, ShardData d)
    {
        void Check(float[]? values, int itemWidth, bool perImage, string what)
        {
            if (values is null) return;
            int at = FiniteCheck.IndexOfNonFinite(values);
            if (at < 0) return;
            int item = at / Math.Max(1, itemWidth), column = at % Math.Max(1, itemWidth);
            // Image parts are stored once per image: name the first row that uses that image.
            int row = perImage ? Math.Max(0, Array.IndexOf(d.ImageSlot, item)) : item;
            long storeRow = FirstRowOf(shard) + row;
            string line = d.Meta is { } m && row < m.Length ? $" (pairs-file line {m[row].Line}, image '{m[row].Image}')" : "";
            throw new InvalidDataException($"The embedding store in {Directory} holds a non-finite value: shard {shard} ({path}), row {row} " +
                $"of the shard (store row {storeRow}){line}: {what} column {column} is {FiniteCheck.Name(values[at])}. A store must hold finite " +
                "embeddings (an encoder with bad normalisation options?); re-run the embedding with a working encoder.");
        }
        Check(d.ImagePooled, d.ImageDim, perImage: true, "image embedding");
        Check(d.TextPooled, d.TextDim, perImage: false, "text embedding");
        Check(d.ImageTokens, d.ImageTokenCount * d.ImageTokenDim, perImage: true, "image token");
        Check(d.TextTokens, d.TextTokenCount * d.TextTokenDim, perImage: false, "text token");
    }

    /// <summary>
    /// Loads every row's pooled embeddings and metadata into memory (for evaluation; use
    /// <see cref="EmbeddingStoreDataSource"/> to stream for training).
    /// </summary>
    /// <exception cref="InvalidDataException">A shard is corrupt.</exception>
    public StoredPairs LoadPooled(CancellationToken cancellationToken = default)
    {
        int di = Manifest.ImageEncoder.Dimension, dt = Manifest.TextEncoder?.Dimension ?? 0;
        int rows = checked((int)Rows);
        var image = new float[checked((long)rows * di)];
        var text = HasText ? new float[checked((long)rows * dt)] : null;
        var meta = new List<StoredRowInfo>(rows);
        int at = 0;
        for (int k = 0; k < Shards.Count; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var d = ReadShard(k, textPooled: true, meta: true);
            for (int r = 0; r < d.Rows; r++)
                d.ImagePooled.AsSpan(d.ImageSlot[r] * di, di).CopyTo(image.AsSpan((at + r) * di, di));
            if (text != null) d.TextPooled!.AsSpan().CopyTo(text.AsSpan(at * dt, d.Rows * dt));
            meta.AddRange(d.Meta!);
            at += d.Rows;
        }
        return new StoredPairs(this, new EmbeddingMatrix(image, rows, di), text == null ? null : new EmbeddingMatrix(text, rows, dt), meta);
    }

    /// <summary>
    /// Combines the stores of all partitions 0..N-1 of one request (written with <see cref="ShardPartition"/>) into one
    /// store at <paramref name="outputDirectory"/>. Shard files are copied unchanged (their checksums carry over);
    /// rows come partition by partition. The merged store's key is the whole-input key, so it is a valid cache for
    /// an unpartitioned request with the same options (same rows and embeddings, different row order and layout).
    /// </summary>
    /// <exception cref="ArgumentException">Partitions are missing, repeated, or from different requests.</exception>
    /// <exception cref="EmbeddingStoreMismatchException">The output folder holds a store of another key.</exception>
    public static EmbeddingStore Merge(IReadOnlyList<string> partitionDirectories, string outputDirectory, CancellationToken cancellationToken = default)
    {
        if (partitionDirectories.Count == 0) throw new ArgumentException("No partition stores to merge.", nameof(partitionDirectories));
        var parts = partitionDirectories.Select(d => Open(d)).ToList();
        var first = parts[0];
        int n = first.Key.Partition is string p0 ? ShardPartition.Parse(p0).Count
            : throw new ArgumentException($"{first.Directory} is not a partition store (written without a partition).");
        var seen = new Dictionary<int, EmbeddingStore>();
        foreach (var s in parts)
        {
            if (s.Key.Partition == null) throw new ArgumentException($"{s.Directory} is not a partition store.");
            var sp = ShardPartition.Parse(s.Key.Partition);
            var diffs = (s.Key with { Partition = null }).Differences(first.Key with { Partition = null });
            if (sp.Count != n || diffs.Count > 0)
                throw new ArgumentException($"{s.Directory} (partition {sp}) comes from a different request than {first.Directory} (partition {first.Key.Partition}): {(sp.Count != n ? $"partition count {sp.Count} vs {n}" : string.Join("; ", diffs))}.");
            if (!seen.TryAdd(sp.Index, s)) throw new ArgumentException($"Partition {sp} is given twice: {seen[sp.Index].Directory} and {s.Directory}.");
        }
        var missing = Enumerable.Range(0, n).Where(i => !seen.ContainsKey(i)).ToList();
        if (missing.Count > 0) throw new ArgumentException($"Missing partition(s) {string.Join(", ", missing.Select(i => $"{i}/{n}"))} of {n}.");

        var key = first.Key with { Partition = null };
        string outDir = Path.GetFullPath(outputDirectory);
        System.IO.Directory.CreateDirectory(outDir);
        var existing = TryReadManifest(outDir);
        if (existing != null) ThrowIfMismatch(outDir, existing, key);
        AtomicFile.DeleteStaleTemps(outDir);

        var m = new EmbeddingStoreManifest
        {
            Layout = "merged", KeyHash = key.Hash, Key = key, ImageEncoder = first.Manifest.ImageEncoder,
            TextEncoder = first.Manifest.TextEncoder, ImageEncoderSource = first.Manifest.ImageEncoderSource,
            TextEncoderSource = first.Manifest.TextEncoderSource, DType = first.Manifest.DType, Contents = first.Manifest.Contents,
            ShardSize = first.Manifest.ShardSize,
            Input = new StoreInput
            {
                PairsFile = first.Manifest.Input.PairsFile, PairsSha256 = first.Manifest.Input.PairsSha256,
                ImageColumn = first.Manifest.Input.ImageColumn, CaptionColumn = first.Manifest.Input.CaptionColumn,
                ExtraColumns = first.Manifest.Input.ExtraColumns, FileRows = first.Manifest.Input.FileRows,
                InputRows = parts.Sum(s => s.Manifest.Input.InputRows),
            },
        };
        int index = 0;
        foreach (var s in Enumerable.Range(0, n).Select(i => seen[i]))
            for (int k = 0; k < s.Shards.Count; k++)
            {
                var e = s.Shards[k];
                cancellationToken.ThrowIfCancellationRequested();
                string name = ShardFileName(index);
                string target = Path.Combine(outDir, name);
                var entry = new ShardEntry { Index = index, File = name, Rows = e.Rows, Images = e.Images, InputRows = e.InputRows, Bytes = e.Bytes, Sha256 = e.Sha256, Skipped = e.Skipped, ImagesSha256 = e.ImagesSha256 };
                if (CheckShard(outDir, entry, verifyChecksum: true).Length > 0)
                {
                    // The merged manifest carries the partition's checksum, so the source must match it before it is copied.
                    s.VerifyShard(k);
                    string source = Path.Combine(s.Directory, e.File);
                    try
                    {
                        // Through AtomicFile: a failed copy (a full disk) leaves no temp shard behind.
                        AtomicFile.Write(target, o => { using var src = File.OpenRead(source); src.CopyTo(o); });
                    }
                    catch (IOException ex)
                    {
                        throw new IOException($"Cannot write merged shard {target} (copying {source}): {ex.Message}", ex);
                    }
                }
                m.Shards.Add(entry);
                index++;
            }
        m.ShardCount = index;
        m.Status = "complete";
        WriteManifest(outDir, m);
        return Open(outDir, key);
    }

    internal static string ShardFileName(int index) => $"shard-{index:D5}.bin";
}
