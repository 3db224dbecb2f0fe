using System.Diagnostics;
using MLNet.Align.Encoders;

namespace MLNet.Align.Embeddings;

/// <summary>Options of <see cref="EmbeddingPipeline.Run"/>.</summary>
public sealed class EmbeddingPipelineOptions
{
    /// <summary>Target rows per shard (default 4096). A shard is the unit of resume and of streaming memory; an image's
    /// caption set is never split, so a shard may exceed this by one set. Part of the store key.</summary>
    public int ShardSize { get; set; } = 4096;
    /// <summary>Stored element type (default fp32). Part of the store key.</summary>
    public EmbeddingDType DType { get; set; } = EmbeddingDType.Float32;
    /// <summary>Also store image tokens [images, T, dti] (the encoder must expose tokens). Part of the store key.</summary>
    public bool ImageTokens { get; set; }
    /// <summary>Also store text tokens [rows, L, dtt] + lengths. Part of the store key.</summary>
    public bool TextTokens { get; set; }
    /// <summary>Items handed to an encoder per call (default 32); also the granularity of progress and cancellation.</summary>
    public int BatchSize { get; set; } = 32;
    /// <summary>Encode only this partition of the input (scale-out); null = everything. Part of the store key.</summary>
    public ShardPartition? Partition { get; set; }
    /// <summary>Fail on the first bad item (missing or undecodable image, empty caption) instead of skipping it.</summary>
    public bool Strict { get; set; }
    /// <summary>Image batches encoded at once, each decoding its own images so that decoding overlaps another batch's
    /// inference (text batches run beside them); 0 = automatic: an <see cref="OnnxImageEncoder"/>'s
    /// <see cref="OnnxImageEncoder.Parallelism"/> (what the cores serve), 1 for other encoders. Not part of the store key:
    /// the output is the same bytes at every value (each batch holds the same items, results are taken in order).</summary>
    public int Concurrency { get; set; }
    /// <summary>Re-hash shards a previous run completed before trusting them (default true).</summary>
    public bool VerifyExistingShards { get; set; } = true;
}

/// <summary>Progress of an embedding run. Work items are distinct images plus captions of the planned input;
/// skipped and already-stored items count as done.</summary>
/// <param name="Done">Items done so far (absolute).</param>
/// <param name="Total">Items planned.</param>
/// <param name="ImagesEncoded">Images encoded by this run so far.</param>
/// <param name="TextsEncoded">Captions encoded by this run so far.</param>
/// <param name="Skipped">Rows skipped so far (this run).</param>
public sealed record EmbeddingProgress(long Done, long Total, long ImagesEncoded, long TextsEncoded, long Skipped);

/// <summary>What an embedding run did.</summary>
/// <param name="Store">The complete store.</param>
/// <param name="ShardsEncoded">Shards encoded by this run.</param>
/// <param name="ShardsReused">Shards found complete and intact from an earlier run.</param>
/// <param name="ImagesEncoded">Images encoded by this run.</param>
/// <param name="TextsEncoded">Captions encoded by this run.</param>
/// <param name="ImageSeconds">Seconds spent in image encoder calls, summed over the batches (which overlap when
/// <see cref="EmbeddingPipelineOptions.Concurrency"/> &gt; 1, so it can exceed <paramref name="Elapsed"/>).</param>
/// <param name="TextSeconds">Seconds spent in text encoder calls, summed over the batches.</param>
/// <param name="Elapsed">Wall time of the run.</param>
public sealed record EmbeddingRunResult(EmbeddingStore Store, int ShardsEncoded, int ShardsReused, long ImagesEncoded,
    long TextsEncoded, double ImageSeconds, double TextSeconds, TimeSpan Elapsed)
{
    /// <summary>Image batches the run kept in flight at once (<see cref="EmbeddingPipelineOptions.Concurrency"/> resolved).</summary>
    public int Concurrency { get; init; } = 1;
}

/// <summary>
/// Encodes a pairs file into an <see cref="EmbeddingStore"/> with a frozen image encoder and a frozen text encoder
/// (docs/design.md "Data flow": batched encoding, cached by encoder SHA-256 + input identity). Each distinct image is
/// encoded once however many captions it has. Bad items (missing or undecodable image, empty caption) are skipped and
/// recorded with their reason in the manifest, or, in strict mode, fail the run naming file, line and column.
/// Resumable: shards a previous (killed or cancelled) run completed are kept, the rest are encoded; the result has
/// the same bytes as an uninterrupted run.
/// </summary>
public static class EmbeddingPipeline
{
    /// <summary>The key a run with these inputs produces (use it to pick a cache folder, see
    /// <see cref="EmbeddingStore.CacheDirectory"/>).</summary>
    public static EmbeddingStoreKey ComputeKey(PairsFile pairs, EncoderIdentity imageEncoder, EncoderIdentity? textEncoder, EmbeddingPipelineOptions? options = null)
    {
        options ??= new EmbeddingPipelineOptions();
        bool hasText = pairs.CaptionColumn != null;
        string input = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            $"{pairs.Sha256}|image={pairs.ImageColumn}|caption={pairs.CaptionColumn ?? "-"}|delimiter={(int)pairs.Delimiter}")));
        return new EmbeddingStoreKey(imageEncoder.Sha256, hasText ? textEncoder?.Sha256 : null, input, options.DType,
            options.ImageTokens, hasText && options.TextTokens, options.ShardSize, options.Partition?.ToString());
    }

    /// <summary>Whether <paramref name="storeDirectory"/> holds a complete store of this request whose images are
    /// unchanged by content (each shard's <see cref="ShardEntry.ImagesSha256"/>): a re-run would encode nothing. Stats each
    /// image and re-hashes only those whose size or last-write time changed (see the pipeline's image hashes file).</summary>
    public static bool IsUpToDate(PairsFile pairs, string storeDirectory, EmbeddingStoreKey key, EmbeddingPipelineOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        options ??= new EmbeddingPipelineOptions();
        string dir = Path.GetFullPath(storeDirectory);
        var m = EmbeddingStore.TryReadManifest(dir);
        if (m == null || m.Status != "complete" || m.KeyHash != key.Hash) return false;
        if (m.Layout == "merged") return true; // a merged store's shards follow the partitions' plans, not this one
        var plan = PlanShards(pairs, options);
        if (m.Shards.Count != plan.Count) return false;
        var hashes = ImageContentHashes.Compute(plan.SelectMany(p => p.ImageIds).Select(id => pairs.Images[id]), dir, cancellationToken);
        return m.Shards.All(s => s.Index >= 0 && s.Index < plan.Count
            && s.ImagesSha256 == hashes.Digest(plan[s.Index].ImageIds.Select(id => pairs.Images[id])));
    }

    /// <summary>Work items (distinct images + captions) a full run with these options plans: the total of
    /// <see cref="EmbeddingProgress.Total"/>, for a progress bar set up before the run.</summary>
    public static long PlannedWork(PairsFile pairs, EmbeddingPipelineOptions? options = null)
        => PlanShards(pairs, options ?? new EmbeddingPipelineOptions()).Sum(p => p.Work(pairs));

    /// <summary>Encodes <paramref name="pairs"/> into the store folder <paramref name="storeDirectory"/> (created if
    /// needed), resuming a partial store of the same key.</summary>
    /// <param name="pairs">The input; an image-only file (no caption column) gives an image-only store.</param>
    /// <param name="storeDirectory">Output folder: empty/new, or holding a store of the same key.</param>
    /// <param name="imageEncoder">Frozen image encoder.</param>
    /// <param name="textEncoder">Frozen text encoder; may be null only for an image-only file.</param>
    /// <param name="options">Shard size, dtype, tokens, partition, strictness.</param>
    /// <param name="progress">Receives <see cref="EmbeddingProgress"/> synchronously after each encoder batch.</param>
    /// <param name="cancellationToken">Checked between batches; completed shards stay on disk for a resume.</param>
    /// <exception cref="EmbeddingStoreMismatchException">The folder holds a store of another key.</exception>
    /// <exception cref="InvalidDataException">Strict mode and a bad item (message: file, line, column, reason).</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static EmbeddingRunResult Run(PairsFile pairs, string storeDirectory, IImageEncoder imageEncoder, ITextEncoder? textEncoder,
        EmbeddingPipelineOptions? options = null, IProgress<EmbeddingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(imageEncoder);
        options ??= new EmbeddingPipelineOptions();
        if (options.ShardSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.ShardSize, "ShardSize must be positive.");
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be positive.");
        if (options.Concurrency < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Concurrency, "Concurrency must be >= 0 (0 = automatic).");
        bool hasText = pairs.CaptionColumn != null;
        if (hasText && textEncoder == null)
            throw new ArgumentNullException(nameof(textEncoder), $"{pairs.Path} has a caption column '{pairs.CaptionColumn}': a text encoder is required.");
        if (options.ImageTokens && imageEncoder.Identity.TokenDimension == null)
            throw new ArgumentException($"Image tokens were requested but the image encoder '{imageEncoder.Identity.Name}' exposes none.", nameof(options));
        if (hasText && options.TextTokens && textEncoder!.Identity.TokenDimension == null)
            throw new ArgumentException($"Text tokens were requested but the text encoder '{textEncoder.Identity.Name}' exposes none.", nameof(options));
        var clock = Stopwatch.StartNew();
        var textId = hasText ? textEncoder!.Identity : null;
        var key = ComputeKey(pairs, imageEncoder.Identity, textId, options);
        string dir = Path.GetFullPath(storeDirectory);
        Directory.CreateDirectory(dir);

        var plan = PlanShards(pairs, options);
        // Shards are tied to their images' content (not only their paths): an image edited in place re-encodes its shard.
        var hashes = ImageContentHashes.Compute(plan.SelectMany(p => p.ImageIds).Select(id => pairs.Images[id]), dir, cancellationToken);
        var imageDigests = plan.Select(p => hashes.Digest(p.ImageIds.Select(id => pairs.Images[id]))).ToArray();
        var manifest = OpenOrStart(dir, key, pairs, imageEncoder.Identity, textId, options, plan, imageDigests);
        hashes.Save(dir);
        manifest.ImageEncoderSource ??= EncoderSource.Of(imageEncoder);
        if (hasText) manifest.TextEncoderSource ??= EncoderSource.Of(textEncoder!);
        AtomicFile.DeleteStaleTemps(dir);
        if (manifest.Layout == "merged")
            return new EmbeddingRunResult(EmbeddingStore.Open(dir, key), 0, manifest.Shards.Count, 0, 0, 0, 0, clock.Elapsed);

        var done = manifest.Shards.Select(s => s.Index).ToHashSet();
        long total = plan.Sum(p => p.Work(pairs));
        long doneItems = plan.Where(p => done.Contains(p.Index)).Sum(p => p.Work(pairs));
        var state = new RunState { Progress = progress, Total = total, Done = doneItems };
        progress?.Report(state.Snapshot());
        int encoded = 0;
        int concurrency = ResolveConcurrency(options, imageEncoder);
        var pending = plan.Where(p => !done.Contains(p.Index)).ToList();
        var works = new Dictionary<int, ShardWork>();
        ShardWork? current = null;
        // Every encoder call of the remaining shards flows through one ordered window: up to `concurrency` image batches
        // run at once (each decodes its own images, so decoding overlaps another batch's inference), text batches run
        // beside them, and the next shard's batches start while this one is assembled and written. Results are taken in
        // input order and each batch holds the same items as in a one-at-a-time run, so the bytes do not depend on it.
        foreach (var item in OrderedWindow.Run(WorkItems(pairs, pending, imageEncoder, hasText ? textEncoder : null, options, works),
                     concurrency, cancellationToken))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var work = works[item.Shard];
            switch (item)
            {
                case ShardStart:
                    current = work;
                    foreach (var (row, column, reason) in work.PreSkips) work.Skip(row, column, reason, pairs, options, state);
                    state.Done += work.PreDone;
                    state.Report();
                    break;
                case ImageBatchResult r:
                    for (int i = 0; i < r.Items.Length; i++)
                    {
                        if (r.Items[i] is { } enc) { work.ImageResults[r.Start + i] = enc; state.Images++; }
                        else foreach (var row in work.Groups[r.Start + i].Rows) work.Skip(row, pairs.ImageColumn, $"image cannot be encoded: {r.Errors[i]}", pairs, options, state);
                    }
                    state.ImageTicks += r.Ticks;
                    state.Done += r.Items.Length;
                    state.Report();
                    break;
                case TextBatchResult t:
                    work.TextResults.Add(t);
                    state.TextTicks += t.Ticks;
                    state.Texts += t.Count;
                    state.Done += t.Count;
                    state.Report();
                    break;
                case ShardEnd:
                    var data = Assemble(work, imageEncoder, hasText ? textEncoder : null, options);
                    string name = EmbeddingStore.ShardFileName(work.Shard.Index);
                    string target = Path.Combine(dir, name);
                    string tmp = AtomicFile.TempPathFor(target);
                    long bytes; string sha;
                    try
                    {
                        (bytes, sha) = ShardFile.Write(tmp, data, options.DType);
                        File.Move(tmp, target, overwrite: true);
                    }
                    catch { AtomicFile.TryDelete(tmp); throw; }
                    manifest.Shards.Add(new ShardEntry
                    {
                        Index = work.Shard.Index, File = name, Rows = data.Rows, Images = data.Images, InputRows = work.Shard.RowCount,
                        Bytes = bytes, Sha256 = sha, Skipped = work.Skipped, ImagesSha256 = imageDigests[work.Shard.Index],
                    });
                    manifest.Status = manifest.Shards.Count == plan.Count ? "complete" : "partial";
                    EmbeddingStore.WriteManifest(dir, manifest);
                    works.Remove(item.Shard);
                    encoded++;
                    break;
            }
        }
        if (manifest.Status != "complete")
        {
            manifest.Status = "complete";
            EmbeddingStore.WriteManifest(dir, manifest);
        }
        var store = EmbeddingStore.Open(dir, key);
        return new EmbeddingRunResult(store, encoded, plan.Count - encoded, state.Images, state.Texts,
            state.ImageTicks / (double)Stopwatch.Frequency, state.TextTicks / (double)Stopwatch.Frequency, clock.Elapsed) { Concurrency = concurrency };
    }

    private sealed class RunState
    {
        public IProgress<EmbeddingProgress>? Progress;
        public long Total, Done, Images, Texts, Skipped, ImageTicks, TextTicks;
        public EmbeddingProgress Snapshot() => new(Done, Total, Images, Texts, Skipped);
        public void Report() => Progress?.Report(Snapshot());
    }

    /// <summary>A planned shard: whole caption sets (image groups) in first-appearance order.</summary>
    private sealed record PlannedShard(int Index, List<int> ImageIds, int RowCount)
    {
        public long Work(PairsFile pairs) => ImageIds.Count + (pairs.CaptionColumn != null ? RowCount : 0);
    }

    private static List<PlannedShard> PlanShards(PairsFile pairs, EmbeddingPipelineOptions options)
    {
        var shards = new List<PlannedShard>();
        var cur = new List<int>();
        int rows = 0;
        for (int id = 0; id < pairs.Images.Count; id++)
        {
            if (options.Partition is { } part && !part.Contains(PartitionKey(pairs, id))) continue;
            int n = pairs.CaptionRowsByImage[id].Count;
            if (rows > 0 && rows + n > options.ShardSize)
            {
                shards.Add(new PlannedShard(shards.Count, cur, rows));
                cur = []; rows = 0;
            }
            cur.Add(id); rows += n;
        }
        if (rows > 0) shards.Add(new PlannedShard(shards.Count, cur, rows));
        return shards;
    }

    /// <summary>Partition key of an image: its path relative to the pairs file, '/'-separated (machine-independent).</summary>
    private static string PartitionKey(PairsFile pairs, int imageId)
        => Path.GetRelativePath(pairs.Folder, pairs.Images[imageId]).Replace('\\', '/');

    private static EmbeddingStoreManifest OpenOrStart(string dir, EmbeddingStoreKey key, PairsFile pairs, EncoderIdentity image,
        EncoderIdentity? text, EmbeddingPipelineOptions options, List<PlannedShard> plan, string[] imageDigests)
    {
        var existing = EmbeddingStore.TryReadManifest(dir);
        if (existing != null)
        {
            EmbeddingStore.ThrowIfMismatch(dir, existing, key);
            if (existing.Layout == "merged")
            {
                // A merged store's layout is not this plan's: it is usable only as a whole.
                if (existing.Status == "complete" && existing.Shards.All(s => EmbeddingStore.CheckShard(dir, s, options.VerifyExistingShards).Length == 0))
                    return existing;
                throw new InvalidOperationException($"The merged embedding store in {dir} is damaged (a shard is missing or altered): re-run the merge of its partition stores, or delete it.");
            }
            var kept = new List<ShardEntry>();
            foreach (var s in existing.Shards)
            {
                bool fits = s.Index >= 0 && s.Index < plan.Count && s.InputRows == plan[s.Index].RowCount && s.File == EmbeddingStore.ShardFileName(s.Index)
                    && s.ImagesSha256 == imageDigests[s.Index]; // an older store without it is re-encoded once
                if (fits && EmbeddingStore.CheckShard(dir, s, options.VerifyExistingShards).Length == 0) kept.Add(s);
            }
            existing.Shards = kept;
            existing.Status = kept.Count == plan.Count ? "complete" : "partial";
            return existing;
        }
        var unexpected = Directory.EnumerateFileSystemEntries(dir)
            .Select(Path.GetFileName)
            .Where(f => !(f!.StartsWith("shard-", StringComparison.Ordinal) || f == ImageContentHashes.FileName || f.Contains(AtomicFile.TempMarker, StringComparison.Ordinal)))
            .ToList();
        if (unexpected.Count > 0)
            throw new IOException($"{dir} is not empty and holds no embedding store ({EmbeddingStore.ManifestFileName} missing; found {string.Join(", ", unexpected.Take(5))}): choose an empty or new folder.");
        return new EmbeddingStoreManifest
        {
            KeyHash = key.Hash, Key = key, ImageEncoder = image, TextEncoder = text, DType = options.DType,
            Contents = new StoreContents { ImagePooled = true, TextPooled = text != null, ImageTokens = options.ImageTokens, TextTokens = key.TextTokens },
            ShardSize = options.ShardSize, ShardCount = plan.Count,
            Input = new StoreInput
            {
                PairsFile = pairs.Path, PairsSha256 = pairs.Sha256, ImageColumn = pairs.ImageColumn, CaptionColumn = pairs.CaptionColumn,
                ExtraColumns = pairs.ExtraColumns.ToList(), FileRows = pairs.Rows.Count, InputRows = plan.Sum(p => p.RowCount),
            },
        };
    }

    /// <summary>Image batches in flight: the option, else the ONNX encoder's own parallelism (what its cores serve), else 1
    /// (another encoder's thread-safety is its own promise, not checked here).</summary>
    internal static int ResolveConcurrency(EmbeddingPipelineOptions options, IImageEncoder imageEncoder)
        => options.Concurrency > 0 ? options.Concurrency : imageEncoder is OnnxImageEncoder onnx ? onnx.Parallelism : 1;

    /// <summary>One shard's work: its surviving groups after the cheap checks, and what the batches returned.</summary>
    private sealed class ShardWork(PlannedShard shard)
    {
        public PlannedShard Shard { get; } = shard;
        public List<(int ImageId, List<PairRow> Rows)> Groups { get; } = [];
        public List<(PairRow Row, string Column, string Reason)> PreSkips { get; } = [];
        public long PreDone;
        public List<PairRow> TextRows { get; } = [];
        public EncodedBatch?[] ImageResults = [];
        public List<TextBatchResult> TextResults { get; } = [];
        public List<SkippedItem> Skipped { get; } = [];

        public void Skip(PairRow row, string column, string reason, PairsFile pairs, EmbeddingPipelineOptions options, RunState state)
        {
            if (options.Strict)
                throw new InvalidDataException($"{pairs.Path}, line {row.Line}, column '{column}': {reason} (strict mode; without it the item is skipped and reported).");
            Skipped.Add(new SkippedItem(row.Index, row.Line, column, row.RawImagePath, reason));
            state.Skipped++;
        }
    }

    internal abstract record WorkResult(int Shard);
    private sealed record ShardStart(int Shard) : WorkResult(Shard);
    private sealed record ShardEnd(int Shard) : WorkResult(Shard);
    internal sealed record ImageBatchResult(int Shard, int Start, EncodedBatch?[] Items, string?[] Errors, long Ticks) : WorkResult(Shard);
    private sealed record TextBatchResult(int Shard, int Start, int Count, EncodedBatch Encoding, long Ticks) : WorkResult(Shard);

    /// <summary>The work of the pending shards in order: a start marker, image batches, text batches, an end marker.
    /// Enumerated lazily by the consumer's thread, so the cheap checks of a shard run just before its batches.</summary>
    private static IEnumerable<OrderedWindow.Item<WorkResult>> WorkItems(PairsFile pairs, List<PlannedShard> pending, IImageEncoder imageEncoder,
        ITextEncoder? textEncoder, EmbeddingPipelineOptions options, Dictionary<int, ShardWork> works)
    {
        bool hasText = textEncoder != null;
        int di = imageEncoder.Identity.Dimension;
        foreach (var shard in pending)
        {
            var work = Prepare(pairs, shard, hasText);
            works[shard.Index] = work;
            int idx = shard.Index;
            yield return OrderedWindow.Item<WorkResult>.Done(new ShardStart(idx));
            for (int start = 0; start < work.Groups.Count; start += options.BatchSize)
            {
                int s0 = start, n = Math.Min(options.BatchSize, work.Groups.Count - start);
                var paths = Enumerable.Range(s0, n).Select(g => pairs.Images[work.Groups[g].ImageId]).ToList();
                yield return OrderedWindow.Item<WorkResult>.Work(ct => EncodeImages(idx, s0, paths, imageEncoder, di, options.ImageTokens, ct));
            }
            if (hasText)
            {
                int dt = textEncoder!.Identity.Dimension;
                for (int start = 0; start < work.TextRows.Count; start += options.BatchSize)
                {
                    int s0 = start, n = Math.Min(options.BatchSize, work.TextRows.Count - start);
                    var texts = work.TextRows.GetRange(s0, n).Select(r => r.Caption!).ToList();
                    yield return OrderedWindow.Item<WorkResult>.Work(ct =>
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        var enc = textEncoder.EncodeBatch(texts, options.TextTokens, ct);
                        CheckShape(enc, n, dt, options.TextTokens, "text", textEncoder.Identity.Name);
                        return new TextBatchResult(idx, s0, n, enc, Stopwatch.GetTimestamp() - t0);
                    });
                }
            }
            yield return OrderedWindow.Item<WorkResult>.Done(new ShardEnd(idx));
        }
    }

    /// <summary>The cheap checks (missing image files, empty captions) of one shard; skips are recorded later, in order.</summary>
    private static ShardWork Prepare(PairsFile pairs, PlannedShard shard, bool hasText)
    {
        var work = new ShardWork(shard);
        foreach (int id in shard.ImageIds)
        {
            var rows = pairs.CaptionRowsByImage[id].Select(r => pairs.Rows[r]).ToList();
            if (!File.Exists(pairs.Images[id]))
            {
                foreach (var r in rows) work.PreSkips.Add((r, pairs.ImageColumn, $"image file not found: {pairs.Images[id]}"));
                work.PreDone += 1 + (hasText ? rows.Count : 0);
                continue;
            }
            var valid = new List<PairRow>();
            foreach (var r in rows)
            {
                if (hasText && string.IsNullOrWhiteSpace(r.Caption)) { work.PreSkips.Add((r, pairs.CaptionColumn!, "empty caption")); work.PreDone++; }
                else valid.Add(r);
            }
            if (valid.Count > 0) work.Groups.Add((id, valid));
            else work.PreDone++; // the image is not needed
        }
        work.ImageResults = new EncodedBatch?[work.Groups.Count];
        // Captions of every surviving group, encoded beside the images: a caption whose image then fails is dropped.
        if (hasText) foreach (var g in work.Groups) work.TextRows.AddRange(g.Rows);
        return work;
    }

    /// <summary>One image batch; a failing batch is retried one image at a time to find the bad one(s).</summary>
    internal static ImageBatchResult EncodeImages(int shard, int start, List<string> paths, IImageEncoder encoder, int di, bool tokens, CancellationToken ct)
    {
        int n = paths.Count;
        var items = new EncodedBatch?[n];
        var errors = new string?[n];
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            var enc = encoder.EncodeBatch(paths, tokens, ct);
            CheckShape(enc, n, di, tokens, "image", encoder.Identity.Name);
            for (int i = 0; i < n; i++) items[i] = Slice(enc, i);
        }
        catch (Exception e) when (IsBadImage(e))
        {
            for (int i = 0; i < n; i++)
            {
                ct.ThrowIfCancellationRequested();
                try
                {
                    var enc = encoder.EncodeBatch([paths[i]], tokens, ct);
                    CheckShape(enc, 1, di, tokens, "image", encoder.Identity.Name);
                    items[i] = enc;
                }
                catch (Exception e1) when (IsBadImage(e1)) { errors[i] = e1.Message; }
            }
        }
        return new ImageBatchResult(shard, start, items, errors, Stopwatch.GetTimestamp() - t0);
    }

    /// <summary>The shard's stored data: surviving images in plan order, their rows, and the rows' captions.</summary>
    private static ShardData Assemble(ShardWork work, IImageEncoder imageEncoder, ITextEncoder? textEncoder, EmbeddingPipelineOptions options)
    {
        var groups = work.Groups;
        var imageResults = work.ImageResults;
        int di = imageEncoder.Identity.Dimension;
        var kept = Enumerable.Range(0, groups.Count).Where(g => imageResults[g] != null).ToList();
        var rowsOut = kept.SelectMany((g, slot) => groups[g].Rows.Select(r => (Row: r, Slot: slot))).ToList();
        var data = new ShardData
        {
            Rows = rowsOut.Count, Images = kept.Count, ImageDim = di,
            ImageSlot = rowsOut.Select(t => t.Slot).ToArray(),
            ImagePooled = new float[checked((long)kept.Count * di)],
            Meta = rowsOut.Select(t => new StoredRowInfo(t.Row.Index, t.Row.Line, t.Row.RawImagePath, t.Row.Caption, t.Row.Extra)).ToArray(),
        };
        for (int s = 0; s < kept.Count; s++) imageResults[kept[s]]!.Pooled.Data.CopyTo(data.ImagePooled, s * di);
        if (options.ImageTokens)
        {
            var toks = kept.Select(g => imageResults[g]!.Tokens!).ToList();
            (data.ImageTokens, data.ImageTokenLengths, data.ImageTokenCount, data.ImageTokenDim) = Stack(toks, imageEncoder.Identity.TokenDimension!.Value);
        }
        if (textEncoder != null)
        {
            // Text results cover work.TextRows (every surviving group's rows, in order); keep the rows whose image encoded.
            int dt = textEncoder.Identity.Dimension;
            var byRow = new Dictionary<int, int>(work.TextRows.Count);
            for (int i = 0; i < work.TextRows.Count; i++) byRow[work.TextRows[i].Index] = i;
            var batchOf = new (TextBatchResult Batch, int Offset)[work.TextRows.Count];
            foreach (var b in work.TextResults) for (int i = 0; i < b.Count; i++) batchOf[b.Start + i] = (b, i);
            data.TextDim = dt;
            data.TextPooled = new float[checked((long)rowsOut.Count * dt)];
            var textTokens = new List<TokenTensor>();
            for (int r = 0; r < rowsOut.Count; r++)
            {
                var (batch, off) = batchOf[byRow[rowsOut[r].Row.Index]];
                batch.Encoding.Pooled.Data.AsSpan(off * dt, dt).CopyTo(data.TextPooled.AsSpan(r * dt, dt));
                if (options.TextTokens) textTokens.Add(Slice(batch.Encoding, off).Tokens!);
            }
            if (options.TextTokens)
                (data.TextTokens, data.TextTokenLengths, data.TextTokenCount, data.TextTokenDim) = Stack(textTokens, textEncoder.Identity.TokenDimension!.Value);
        }
        return data;
    }

    private static bool IsBadImage(Exception e) => e is InvalidDataException or FileNotFoundException or ArgumentException or NotSupportedException;

    private static void CheckShape(EncodedBatch enc, int n, int dim, bool tokens, string side, string name)
    {
        if (enc.Pooled.Rows != n || enc.Pooled.Columns != dim)
            throw new InvalidOperationException($"The {side} encoder '{name}' returned pooled [{enc.Pooled.Rows}, {enc.Pooled.Columns}] for {n} items, expected [{n}, {dim}].");
        if (tokens && (enc.Tokens == null || enc.Tokens.Count != n))
            throw new InvalidOperationException($"The {side} encoder '{name}' returned {(enc.Tokens == null ? "no tokens" : $"tokens for {enc.Tokens.Count} items")}, expected tokens for {n} items.");
    }

    /// <summary>Item <paramref name="i"/> of a batch encoding, tokens trimmed to its length.</summary>
    private static EncodedBatch Slice(EncodedBatch enc, int i)
    {
        int d = enc.Pooled.Columns;
        var pooled = new EmbeddingMatrix(enc.Pooled.Data.AsSpan(i * d, d).ToArray(), 1, d);
        TokenTensor? tok = null;
        if (enc.Tokens is { } t)
        {
            int len = t.Lengths[i];
            tok = new TokenTensor(t.Item(i).Slice(0, len * t.Dimension).ToArray(), 1, len, t.Dimension, [len]);
        }
        return new EncodedBatch(pooled, tok);
    }

    /// <summary>Stacks single-item token tensors into [count, max length, dim], zero-padded.</summary>
    private static (float[], int[], int, int) Stack(List<TokenTensor> items, int expectedDim)
    {
        int max = items.Count == 0 ? 0 : items.Max(t => t.Lengths[0]);
        foreach (var t in items)
            if (t.Dimension != expectedDim) throw new InvalidOperationException($"Token width {t.Dimension}, the encoder identity declares {expectedDim}.");
        var data = new float[checked((long)items.Count * max * expectedDim)];
        var lengths = new int[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            lengths[i] = items[i].Lengths[0];
            items[i].Data.AsSpan(0, lengths[i] * expectedDim).CopyTo(data.AsSpan(i * max * expectedDim));
        }
        return (data, lengths, max, expectedDim);
    }
}
