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
/// <param name="ImageSeconds">Wall seconds spent in the image encoder.</param>
/// <param name="TextSeconds">Wall seconds spent in the text encoder.</param>
/// <param name="Elapsed">Wall time of the run.</param>
public sealed record EmbeddingRunResult(EmbeddingStore Store, int ShardsEncoded, int ShardsReused, long ImagesEncoded,
    long TextsEncoded, double ImageSeconds, double TextSeconds, TimeSpan Elapsed);

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
        var manifest = OpenOrStart(dir, key, pairs, imageEncoder.Identity, textId, options, plan);
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
        foreach (var shard in plan)
        {
            if (done.Contains(shard.Index)) continue;
            cancellationToken.ThrowIfCancellationRequested();
            var (data, skipped) = EncodeShard(pairs, shard, imageEncoder, hasText ? textEncoder : null, options, state, cancellationToken);
            string name = EmbeddingStore.ShardFileName(shard.Index);
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
                Index = shard.Index, File = name, Rows = data.Rows, Images = data.Images, InputRows = shard.RowCount,
                Bytes = bytes, Sha256 = sha, Skipped = skipped,
            });
            manifest.Status = manifest.Shards.Count == plan.Count ? "complete" : "partial";
            EmbeddingStore.WriteManifest(dir, manifest);
            encoded++;
        }
        if (manifest.Status != "complete")
        {
            manifest.Status = "complete";
            EmbeddingStore.WriteManifest(dir, manifest);
        }
        var store = EmbeddingStore.Open(dir, key);
        return new EmbeddingRunResult(store, encoded, plan.Count - encoded, state.Images, state.Texts,
            state.ImageTicks / (double)Stopwatch.Frequency, state.TextTicks / (double)Stopwatch.Frequency, clock.Elapsed);
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
        EncoderIdentity? text, EmbeddingPipelineOptions options, List<PlannedShard> plan)
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
                bool fits = s.Index >= 0 && s.Index < plan.Count && s.InputRows == plan[s.Index].RowCount && s.File == EmbeddingStore.ShardFileName(s.Index);
                if (fits && EmbeddingStore.CheckShard(dir, s, options.VerifyExistingShards).Length == 0) kept.Add(s);
            }
            existing.Shards = kept;
            existing.Status = kept.Count == plan.Count ? "complete" : "partial";
            return existing;
        }
        var unexpected = Directory.EnumerateFileSystemEntries(dir)
            .Select(Path.GetFileName)
            .Where(f => !(f!.StartsWith("shard-", StringComparison.Ordinal) || f.Contains(AtomicFile.TempMarker, StringComparison.Ordinal)))
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

    private static (ShardData Data, List<SkippedItem> Skipped) EncodeShard(PairsFile pairs, PlannedShard shard, IImageEncoder imageEncoder,
        ITextEncoder? textEncoder, EmbeddingPipelineOptions options, RunState state, CancellationToken ct)
    {
        bool hasText = textEncoder != null;
        var skipped = new List<SkippedItem>();
        void Skip(PairRow row, string column, string reason)
        {
            if (options.Strict)
                throw new InvalidDataException($"{pairs.Path}, line {row.Line}, column '{column}': {reason} (strict mode; without it the item is skipped and reported).");
            skipped.Add(new SkippedItem(row.Index, row.Line, column, row.RawImagePath, reason));
            state.Skipped++;
        }

        // 1. Cheap checks first: missing image files and empty captions.
        var groups = new List<(int ImageId, List<PairRow> Rows)>();
        foreach (int id in shard.ImageIds)
        {
            var rows = pairs.CaptionRowsByImage[id].Select(r => pairs.Rows[r]).ToList();
            if (!File.Exists(pairs.Images[id]))
            {
                foreach (var r in rows) Skip(r, pairs.ImageColumn, $"image file not found: {pairs.Images[id]}");
                state.Done += 1 + (hasText ? rows.Count : 0);
                continue;
            }
            var valid = new List<PairRow>();
            foreach (var r in rows)
            {
                if (hasText && string.IsNullOrWhiteSpace(r.Caption)) { Skip(r, pairs.CaptionColumn!, "empty caption"); state.Done++; }
                else valid.Add(r);
            }
            if (valid.Count > 0) groups.Add((id, valid));
            else state.Done++; // the image is not needed
        }
        state.Report();

        // 2. Images, batched; a failing batch is retried one image at a time to find the bad one(s).
        int di = imageEncoder.Identity.Dimension;
        var imageResults = new Encoding?[groups.Count];
        for (int start = 0; start < groups.Count; start += options.BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            int n = Math.Min(options.BatchSize, groups.Count - start);
            var paths = Enumerable.Range(start, n).Select(g => pairs.Images[groups[g].ImageId]).ToList();
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                var enc = imageEncoder.EncodeBatch(paths, options.ImageTokens, ct);
                CheckShape(enc, n, di, options.ImageTokens, "image", imageEncoder.Identity.Name);
                for (int i = 0; i < n; i++) imageResults[start + i] = Slice(enc, i);
            }
            catch (Exception e) when (IsBadImage(e))
            {
                for (int i = 0; i < n; i++)
                {
                    ct.ThrowIfCancellationRequested();
                    try
                    {
                        var enc = imageEncoder.EncodeBatch([paths[i]], options.ImageTokens, ct);
                        CheckShape(enc, 1, di, options.ImageTokens, "image", imageEncoder.Identity.Name);
                        imageResults[start + i] = enc;
                    }
                    catch (Exception e1) when (IsBadImage(e1))
                    {
                        foreach (var r in groups[start + i].Rows) Skip(r, pairs.ImageColumn, $"image cannot be encoded: {e1.Message}");
                        if (hasText) state.Done += groups[start + i].Rows.Count;
                    }
                }
            }
            state.ImageTicks += Stopwatch.GetTimestamp() - t0;
            int ok = Enumerable.Range(start, n).Count(g => imageResults[g] != null);
            state.Images += ok;
            state.Done += n;
            state.Report();
        }

        // 3. Assemble the surviving images and rows.
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

        // 4. Captions, batched.
        if (hasText)
        {
            int dt = textEncoder!.Identity.Dimension;
            data.TextDim = dt;
            data.TextPooled = new float[checked((long)rowsOut.Count * dt)];
            var textTokens = new List<TokenTensor>();
            for (int start = 0; start < rowsOut.Count; start += options.BatchSize)
            {
                ct.ThrowIfCancellationRequested();
                int n = Math.Min(options.BatchSize, rowsOut.Count - start);
                var texts = rowsOut.Skip(start).Take(n).Select(t => t.Row.Caption!).ToList();
                long t0 = Stopwatch.GetTimestamp();
                var enc = textEncoder.EncodeBatch(texts, options.TextTokens, ct);
                state.TextTicks += Stopwatch.GetTimestamp() - t0;
                CheckShape(enc, n, dt, options.TextTokens, "text", textEncoder.Identity.Name);
                enc.Pooled.Data.CopyTo(data.TextPooled, start * dt);
                if (options.TextTokens) for (int i = 0; i < n; i++) textTokens.Add(Slice(enc, i).Tokens!);
                state.Texts += n;
                state.Done += n;
                state.Report();
            }
            if (options.TextTokens)
                (data.TextTokens, data.TextTokenLengths, data.TextTokenCount, data.TextTokenDim) = Stack(textTokens, textEncoder.Identity.TokenDimension!.Value);
        }
        return (data, skipped);
    }

    private static bool IsBadImage(Exception e) => e is InvalidDataException or FileNotFoundException or ArgumentException or NotSupportedException;

    private static void CheckShape(Encoding enc, int n, int dim, bool tokens, string side, string name)
    {
        if (enc.Pooled.Rows != n || enc.Pooled.Columns != dim)
            throw new InvalidOperationException($"The {side} encoder '{name}' returned pooled [{enc.Pooled.Rows}, {enc.Pooled.Columns}] for {n} items, expected [{n}, {dim}].");
        if (tokens && (enc.Tokens == null || enc.Tokens.Count != n))
            throw new InvalidOperationException($"The {side} encoder '{name}' returned {(enc.Tokens == null ? "no tokens" : $"tokens for {enc.Tokens.Count} items")}, expected tokens for {n} items.");
    }

    /// <summary>Item <paramref name="i"/> of a batch encoding, tokens trimmed to its length.</summary>
    private static Encoding Slice(Encoding enc, int i)
    {
        int d = enc.Pooled.Columns;
        var pooled = new EmbeddingMatrix(enc.Pooled.Data.AsSpan(i * d, d).ToArray(), 1, d);
        TokenTensor? tok = null;
        if (enc.Tokens is { } t)
        {
            int len = t.Lengths[i];
            tok = new TokenTensor(t.Item(i).Slice(0, len * t.Dimension).ToArray(), 1, len, t.Dimension, [len]);
        }
        return new Encoding(pooled, tok);
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
