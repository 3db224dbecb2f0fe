using System.Buffers.Binary;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Curation;

/// <summary>Which side of a pool pair is scored against the prototypes.</summary>
public enum CurationSide
{
    /// <summary>The caption's text embedding vs text prototypes (the released pipeline scores captions).</summary>
    Caption,
    /// <summary>The image embedding vs image prototypes.</summary>
    Image,
    /// <summary>The mean of both cosine similarities (needs text and image prototypes).</summary>
    Both,
}

/// <summary>Settings of <see cref="ConceptCurator"/>.</summary>
public sealed record CurationOptions
{
    /// <summary>K: candidates kept per concept by the streaming top-k (the released <c>sort_samples.py --max</c>,
    /// there 50,000). Bounds memory at C x K entries. Default 500.</summary>
    public int PerConcept { get; init; } = 500;
    /// <summary>Most pairs assigned to one concept (the released <c>per_class</c>, there 2,000). Default 100.</summary>
    public int Cap { get; init; } = 100;
    /// <summary>Scored side. Default the caption.</summary>
    public CurationSide Side { get; init; } = CurationSide.Caption;
    /// <summary>Score only this partition of the pool (by image key, as <c>embed --shard</c>); null = all.</summary>
    public ShardPartition? Partition { get; init; }
    /// <summary>Worker threads over concept ranges (0 = processor count). Results do not depend on it.</summary>
    public int Threads { get; init; }
}

/// <summary>
/// The mergeable middle of stage 2: for each concept, its top-K pool rows by score (best first; ties by lower store
/// row), from one partition of the pool or all of it. The top-K of a union is the top-K of the parts' top-Ks, so
/// <see cref="Merge"/> of all partitions equals a one-process <see cref="ConceptCurator.Score"/> exactly.
/// </summary>
public sealed class ConceptCandidates
{
    private const uint Magic = 0x4343_4C4D; // "MLCC"
    private const int Version = 1;

    /// <summary>Creates candidate lists (each best first).</summary>
    public ConceptCandidates(string poolDirectory, string poolKey, long poolRows, string? partition, int perConcept, CurationSide side, string scoring,
        IReadOnlyList<string> concepts, long[][] rows, float[][] scores)
    {
        PoolDirectory = poolDirectory; PoolKey = poolKey; PoolRows = poolRows; Partition = partition; PerConcept = perConcept; Side = side;
        Scoring = scoring; Concepts = concepts; Rows = rows; Scores = scores;
    }

    /// <summary>The pool store folder (absolute, as scored).</summary>
    public string PoolDirectory { get; }
    /// <summary>The pool store's key hash.</summary>
    public string PoolKey { get; }
    /// <summary>Rows of the whole pool store.</summary>
    public long PoolRows { get; }
    /// <summary>"i/N" or null.</summary>
    public string? Partition { get; }
    /// <summary>K.</summary>
    public int PerConcept { get; }
    /// <summary>Scored side.</summary>
    public CurationSide Side { get; }
    /// <summary><see cref="ConceptPrototypes.Fingerprint"/> of the prototypes used.</summary>
    public string Scoring { get; }
    /// <summary>Concept names.</summary>
    public IReadOnlyList<string> Concepts { get; }
    /// <summary>Per concept: store rows, best first.</summary>
    public long[][] Rows { get; }
    /// <summary>Per concept: cosine scores, descending, aligned with <see cref="Rows"/>.</summary>
    public float[][] Scores { get; }

    /// <summary>Writes the lists atomically. Binary, little-endian: magic "MLCC", version, header length, UTF-8 JSON
    /// header (pool, key, rows, partition, K, side, scoring, concept names), then per concept: int32 count, count x
    /// (int64 row, float32 score).</summary>
    public void Save(string path)
    {
        var header = JsonSerializer.SerializeToUtf8Bytes(new Header(PoolDirectory, PoolKey, PoolRows, Partition, PerConcept, Side.ToString(), Scoring, Concepts.ToArray()));
        AtomicFile.Write(path, s =>
        {
            using var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic); w.Write(Version); w.Write(header.Length); w.Write(header);
            for (int c = 0; c < Rows.Length; c++)
            {
                w.Write(Rows[c].Length);
                for (int i = 0; i < Rows[c].Length; i++) { w.Write(Rows[c][i]); w.Write(Scores[c][i]); }
            }
        });
    }

    /// <summary>Reads lists written by <see cref="Save"/>.</summary>
    /// <exception cref="InvalidDataException">Not such a file, another version, or truncated.</exception>
    public static ConceptCandidates Load(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        try
        {
            if (r.ReadUInt32() != Magic) throw new InvalidDataException($"{path}: not an MLNet.Align concept candidates file.");
            int v = r.ReadInt32();
            if (v != Version) throw new InvalidDataException($"{path}: candidates format version {v}, this library reads {Version}.");
            var h = JsonSerializer.Deserialize<Header>(r.ReadBytes(r.ReadInt32())) ?? throw new InvalidDataException($"{path}: empty header.");
            var rows = new long[h.Concepts.Length][];
            var scores = new float[h.Concepts.Length][];
            for (int c = 0; c < rows.Length; c++)
            {
                int n = r.ReadInt32();
                if (n < 0 || n > h.PerConcept) throw new InvalidDataException($"{path}: concept {c} lists {n} candidates, K is {h.PerConcept}.");
                rows[c] = new long[n]; scores[c] = new float[n];
                for (int i = 0; i < n; i++) { rows[c][i] = r.ReadInt64(); scores[c][i] = r.ReadSingle(); }
            }
            if (r.BaseStream.Position != r.BaseStream.Length) throw new InvalidDataException($"{path}: trailing bytes after the last concept.");
            return new ConceptCandidates(h.Pool, h.Key, h.PoolRows, h.Partition, h.PerConcept, Enum.Parse<CurationSide>(h.Side), h.Scoring, h.Concepts, rows, scores);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: truncated concept candidates file.");
        }
    }

    /// <summary>Combines the lists of partitions 0..N-1 of one scoring into the whole pool's lists.</summary>
    /// <exception cref="ArgumentException">Parts missing, repeated, or from another pool, K, side or prototype set.</exception>
    public static ConceptCandidates Merge(IReadOnlyList<ConceptCandidates> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("No candidate parts to merge.");
        var f = parts[0];
        if (f.Partition is null) throw new ArgumentException("The first part is not a partition (written without --shard).");
        int n = ShardPartition.Parse(f.Partition).Count;
        var seen = new HashSet<int>();
        foreach (var p in parts)
        {
            if (p.Partition is null) throw new ArgumentException("A part is not a partition (written without --shard).");
            var sp = ShardPartition.Parse(p.Partition);
            string? why = sp.Count != n ? $"partition count {sp.Count} vs {n}" : p.PoolKey != f.PoolKey ? $"pool key {p.PoolKey[..12]} vs {f.PoolKey[..12]}"
                : p.PerConcept != f.PerConcept ? $"K {p.PerConcept} vs {f.PerConcept}" : p.Side != f.Side ? $"side {p.Side} vs {f.Side}"
                : p.Scoring != f.Scoring ? "other prototypes (concepts, prompts or encoder)" : null;
            if (why is not null) throw new ArgumentException($"Partition {sp} does not belong with partition {f.Partition}: {why}.");
            if (!seen.Add(sp.Index)) throw new ArgumentException($"Partition {sp} is given twice.");
        }
        var missing = Enumerable.Range(0, n).Where(i => !seen.Contains(i)).ToArray();
        if (missing.Length > 0) throw new ArgumentException($"Missing partition(s) {string.Join(", ", missing.Select(i => $"{i}/{n}"))}.");
        int k = f.PerConcept;
        var rows = new long[f.Concepts.Count][];
        var scores = new float[f.Concepts.Count][];
        for (int c = 0; c < rows.Length; c++)
        {
            var all = parts.SelectMany(p => p.Rows[c].Select((row, i) => (Row: row, Score: p.Scores[c][i])))
                .OrderByDescending(t => t.Score).ThenBy(t => t.Row).Take(k).ToArray();
            rows[c] = all.Select(t => t.Row).ToArray();
            scores[c] = all.Select(t => t.Score).ToArray();
        }
        return new ConceptCandidates(f.PoolDirectory, f.PoolKey, f.PoolRows, null, k, f.Side, f.Scoring, f.Concepts, rows, scores);
    }

    private sealed record Header(
        [property: JsonPropertyName("pool")] string Pool, [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("pool_rows")] long PoolRows, [property: JsonPropertyName("partition")] string? Partition,
        [property: JsonPropertyName("k")] int PerConcept, [property: JsonPropertyName("side")] string Side,
        [property: JsonPropertyName("scoring")] string Scoring, [property: JsonPropertyName("concepts")] string[] Concepts);
}

/// <summary>One concept's outcome.</summary>
/// <param name="Name">Concept name.</param>
/// <param name="Selected">Pairs assigned to it.</param>
/// <param name="Candidates">Candidates it had (min(K, pool)).</param>
/// <param name="KthScore">Its score at rank K (the "how well served" key; rarest first = lowest).</param>
/// <param name="BestScore">Its best score.</param>
/// <param name="Order">Its turn in the assignment (0 = first, the rarest).</param>
public sealed record ConceptOutcome(
    [property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("selected")] int Selected,
    [property: JsonPropertyName("candidates")] int Candidates, [property: JsonPropertyName("kth_score")] float? KthScore,
    [property: JsonPropertyName("best_score")] float? BestScore, [property: JsonPropertyName("order")] int Order);

/// <summary>The balanced subset: per concept the assigned store rows (best first) and the summary.</summary>
public sealed class CurationResult
{
    internal CurationResult(ConceptCandidates candidates, int cap, long[][] rows, float[][] scores, ConceptOutcome[] outcomes)
    {
        Candidates = candidates; Cap = cap; SelectedRows = rows; SelectedScores = scores; Outcomes = outcomes;
    }

    /// <summary>The candidate lists it was assigned from.</summary>
    public ConceptCandidates Candidates { get; }
    /// <summary>The per-concept cap.</summary>
    public int Cap { get; }
    /// <summary>Per concept: assigned store rows, best first.</summary>
    public long[][] SelectedRows { get; }
    /// <summary>Per concept: their scores.</summary>
    public float[][] SelectedScores { get; }
    /// <summary>Per concept summary, in concept-list order.</summary>
    public ConceptOutcome[] Outcomes { get; }
    /// <summary>Total pairs selected.</summary>
    public int Total => SelectedRows.Sum(r => r.Length);
    /// <summary>Concepts with at least one pair.</summary>
    public int Covered => Outcomes.Count(o => o.Selected > 0);
}

/// <summary>The JSON report of a curation (counts, coverage, settings); no timings, so equal inputs give equal bytes.</summary>
public sealed record CurationReport
{
    /// <summary>The pool store folder.</summary>
    [JsonPropertyName("pool")] public required string Pool { get; init; }
    /// <summary>The pool store's key hash.</summary>
    [JsonPropertyName("pool_key")] public required string PoolKey { get; init; }
    /// <summary>Pairs in the pool.</summary>
    [JsonPropertyName("pool_rows")] public long PoolRows { get; init; }
    /// <summary>Scored side: caption, image or both.</summary>
    [JsonPropertyName("side")] public required string Side { get; init; }
    /// <summary>K: candidates kept per concept.</summary>
    [JsonPropertyName("per_concept")] public int PerConcept { get; init; }
    /// <summary>Most pairs per concept.</summary>
    [JsonPropertyName("cap")] public int Cap { get; init; }
    /// <summary>Concepts in the list.</summary>
    [JsonPropertyName("concepts")] public int Concepts { get; init; }
    /// <summary>Pairs in the subset.</summary>
    [JsonPropertyName("selected")] public int Selected { get; init; }
    /// <summary>Concepts with at least one selected pair.</summary>
    [JsonPropertyName("covered")] public int Covered { get; init; }
    /// <summary>Covered / concepts.</summary>
    [JsonPropertyName("coverage")] public double Coverage { get; init; }
    /// <summary>Concepts that reached the cap.</summary>
    [JsonPropertyName("at_cap")] public int AtCap { get; init; }
    /// <summary>Distinct images among the selected pairs.</summary>
    [JsonPropertyName("distinct_images")] public int DistinctImages { get; init; }
    /// <summary>Per concept, in list order: pairs selected, candidates, K-th and best score, turn.</summary>
    [JsonPropertyName("per_concept_counts")] public required ConceptOutcome[] PerConceptCounts { get; init; }
}

/// <summary>
/// Stage 2 of Freeze-Align (paper section 2.2): score every pool pair against every concept prototype (cosine), keep
/// a bounded top-K per concept while streaming the embedding store shard by shard (memory O(C x K + one shard)),
/// then assign: concepts whose K-th best match is weakest (the rarest) choose first, each walks its candidates best
/// first, skips pairs already taken by another concept, and keeps at most Cap (the released <c>collect_fast.py</c>).
/// No absolute threshold: selection is rank-based. Deterministic: ties break by lower store row; scores are
/// per-(row, concept) dot products computed the same way whatever the batch, thread count or partition.
/// </summary>
public static class ConceptCurator
{
    /// <summary>Scores the pool (or one partition of it) and keeps each concept's top K.</summary>
    /// <param name="pool">The embedding store of the pool (pairs).</param>
    /// <param name="prototypes">Prototypes; text ones for <see cref="CurationSide.Caption"/>, image ones for
    /// <see cref="CurationSide.Image"/>, both for <see cref="CurationSide.Both"/>; their encoders must be the store's.</param>
    /// <param name="options">K, side, partition, threads.</param>
    /// <param name="progress">Store rows done (all rows of a shard count, partition or not).</param>
    /// <param name="cancellationToken">Checked per shard.</param>
    /// <exception cref="ArgumentException">Missing prototypes for the side, an encoder other than the store's, a width
    /// mismatch, or K/Cap not positive.</exception>
    public static ConceptCandidates Score(EmbeddingStore pool, ConceptPrototypes prototypes, CurationOptions? options = null,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(prototypes);
        options ??= new CurationOptions();
        if (options.PerConcept < 1) throw new ArgumentException($"Candidates per concept (K) must be positive, got {options.PerConcept}.");
        bool useText = options.Side != CurationSide.Image, useImage = options.Side != CurationSide.Caption;
        var m = pool.Manifest;
        if (useText)
        {
            if (prototypes.Text is null) throw new ArgumentException($"Side {options.Side} needs text prototypes (concept prompts).");
            if (!pool.HasText) throw new ArgumentException($"The pool {pool.Directory} is image-only: side {options.Side} needs captions.");
            if (m.TextEncoder!.Sha256 != prototypes.TextEncoder!.Sha256)
                throw new ArgumentException($"The text prototypes come from '{prototypes.TextEncoder.Name}' but the pool captions from '{m.TextEncoder.Name}' (SHA-256 {m.TextEncoder.Sha256[..12]}): use the pool's text encoder.");
        }
        if (useImage)
        {
            if (prototypes.Image is null) throw new ArgumentException($"Side {options.Side} needs image prototypes (example images).");
            if (m.ImageEncoder.Sha256 != prototypes.ImageEncoder!.Sha256)
                throw new ArgumentException($"The image prototypes come from '{prototypes.ImageEncoder.Name}' but the pool images from '{m.ImageEncoder.Name}' (SHA-256 {m.ImageEncoder.Sha256[..12]}): use the pool's image encoder.");
        }
        int concepts = prototypes.Concepts.Count, k = options.PerConcept;
        var heaps = Enumerable.Range(0, concepts).Select(_ => new StreamingTopK(k)).ToArray();
        string folder = Path.GetDirectoryName(m.Input.PairsFile) ?? "";
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        long done = 0;
        for (int s = 0; s < pool.Shards.Count; s++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var d = pool.ReadShard(s, textPooled: useText, meta: options.Partition is not null);
            long first = pool.FirstRowOf(s);
            int[] rows = options.Partition is { } part
                ? Enumerable.Range(0, d.Rows).Where(r => part.Contains(PartitionKey(pool, folder, d.Meta![r].Image))).ToArray()
                : Enumerable.Range(0, d.Rows).ToArray();
            if (rows.Length > 0)
            {
                float[]? text = useText ? Normalized(d.TextPooled!, d.Rows, d.TextDim) : null;
                float[]? image = useImage ? Normalized(d.ImagePooled, d.Images, d.ImageDim) : null;
                if (useText && d.TextDim != prototypes.Text!.Columns) throw new ArgumentException($"Pool text width {d.TextDim} vs prototype width {prototypes.Text.Columns}.");
                if (useImage && d.ImageDim != prototypes.Image!.Columns) throw new ArgumentException($"Pool image width {d.ImageDim} vs prototype width {prototypes.Image.Columns}.");
                int chunk = (concepts + threads - 1) / threads;
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = cancellationToken }, t =>
                {
                    int c0 = t * chunk, c1 = Math.Min(concepts, c0 + chunk);
                    if (c0 >= c1) return;
                    // Image-side scores once per stored image; then rows in blocks that stay in cache while every
                    // concept of this worker passes over them.
                    var imageScores = useImage ? new float[(c1 - c0) * Math.Max(1, d.Images)] : null;
                    if (useImage)
                        for (int c = c0; c < c1; c++)
                            for (int i = 0; i < d.Images; i++)
                                imageScores![(c - c0) * d.Images + i] = TensorPrimitives.Dot(image.AsSpan(i * d.ImageDim, d.ImageDim), prototypes.Image!.Row(c));
                    const int block = 64;
                    for (int b0 = 0; b0 < rows.Length; b0 += block)
                    {
                        int b1 = Math.Min(rows.Length, b0 + block);
                        for (int c = c0; c < c1; c++)
                        {
                            var heap = heaps[c];
                            ReadOnlySpan<float> tp = useText ? prototypes.Text!.Row(c) : default;
                            int io = (c - c0) * d.Images;
                            for (int b = b0; b < b1; b++)
                            {
                                int r = rows[b];
                                float score = options.Side switch
                                {
                                    CurationSide.Caption => TensorPrimitives.Dot(text.AsSpan(r * d.TextDim, d.TextDim), tp),
                                    CurationSide.Image => imageScores![io + d.ImageSlot[r]],
                                    _ => 0.5f * (TensorPrimitives.Dot(text.AsSpan(r * d.TextDim, d.TextDim), tp) + imageScores![io + d.ImageSlot[r]]),
                                };
                                heap.Offer(score, first + r);
                            }
                        }
                    }
                });
            }
            done += d.Rows;
            progress?.Report(done);
        }
        var outRows = new long[concepts][];
        var outScores = new float[concepts][];
        for (int c = 0; c < concepts; c++) (outRows[c], outScores[c]) = heaps[c].Sorted();
        return new ConceptCandidates(pool.Directory, m.KeyHash, pool.Rows, options.Partition?.ToString(), k, options.Side, prototypes.Fingerprint,
            prototypes.Concepts.Select(c => c.Name).ToArray(), outRows, outScores);
    }

    /// <summary>The balanced assignment (rarest concepts first, no pair in two concepts, at most <paramref name="cap"/> each).</summary>
    /// <exception cref="ArgumentException">cap &lt; 1, or the lists are of one partition only (merge first).</exception>
    public static CurationResult Select(ConceptCandidates candidates, int cap)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        if (cap < 1) throw new ArgumentException($"The per-concept cap must be positive, got {cap}.");
        if (candidates.Partition is not null)
            throw new ArgumentException($"These candidates are of partition {candidates.Partition} only: merge all partitions before selecting.");
        int n = candidates.Concepts.Count;
        float Served(int c) => candidates.Scores[c].Length == 0 ? float.NegativeInfinity : candidates.Scores[c][^1];
        var order = Enumerable.Range(0, n).OrderBy(Served).ThenBy(c => c).ToArray();
        var taken = new HashSet<long>();
        var rows = new long[n][];
        var scores = new float[n][];
        var turn = new int[n];
        for (int t = 0; t < order.Length; t++)
        {
            int c = order[t];
            turn[c] = t;
            var r = new List<long>(); var s = new List<float>();
            for (int i = 0; i < candidates.Rows[c].Length && r.Count < cap; i++)
                if (taken.Add(candidates.Rows[c][i])) { r.Add(candidates.Rows[c][i]); s.Add(candidates.Scores[c][i]); }
            rows[c] = r.ToArray(); scores[c] = s.ToArray();
        }
        var outcomes = Enumerable.Range(0, n).Select(c => new ConceptOutcome(candidates.Concepts[c], rows[c].Length, candidates.Rows[c].Length,
            candidates.Scores[c].Length > 0 ? candidates.Scores[c][^1] : null, candidates.Scores[c].Length > 0 ? candidates.Scores[c][0] : null, turn[c])).ToArray();
        return new CurationResult(candidates, cap, rows, scores, outcomes);
    }

    /// <summary>Writes the subset as a pairs file (TSV: image, caption, concept, score, then the pool's extra
    /// columns; image paths relative to the output file's folder; rows by concept-list order, best first) and returns
    /// the report. Reads the metadata of only the shards holding selected rows.</summary>
    /// <exception cref="ArgumentException">The pool is not the one the candidates were scored on.</exception>
    public static CurationReport WriteSubset(EmbeddingStore pool, CurationResult result, string pairsPath, CancellationToken cancellationToken = default)
    {
        if (pool.Key.Hash != result.Candidates.PoolKey)
            throw new ArgumentException($"The pool {pool.Directory} (key {pool.Key.ShortHash}) is not the pool these candidates were scored on (key {result.Candidates.PoolKey[..16]}).");
        string outFull = Path.GetFullPath(pairsPath);
        string outDir = Path.GetDirectoryName(outFull)!;
        Directory.CreateDirectory(outDir);
        var wanted = result.SelectedRows.SelectMany(r => r).ToHashSet();
        var meta = new Dictionary<long, StoredRowInfo>();
        for (int s = 0; s < pool.Shards.Count; s++)
        {
            long first = pool.FirstRowOf(s);
            if (!Enumerable.Range(0, pool.Shards[s].Rows).Any(r => wanted.Contains(first + r))) continue;
            cancellationToken.ThrowIfCancellationRequested();
            var d = pool.ReadShard(s, textPooled: false, meta: true);
            for (int r = 0; r < d.Rows; r++) if (wanted.Contains(first + r)) meta[first + r] = d.Meta![r];
        }
        var extras = pool.Manifest.Input.ExtraColumns.Where(c => c is not "concept" and not "score").ToList();
        var extraIdx = extras.Select(c => pool.Manifest.Input.ExtraColumns.IndexOf(c)).ToArray();
        var sb = new StringBuilder();
        sb.Append("image\tcaption\tconcept\tscore");
        foreach (var e in extras) sb.Append('\t').Append(e);
        sb.Append('\n');
        var images = new HashSet<string>(StringComparer.Ordinal);
        for (int c = 0; c < result.SelectedRows.Length; c++)
            for (int i = 0; i < result.SelectedRows[c].Length; i++)
            {
                var info = meta[result.SelectedRows[c][i]];
                string image = Path.GetRelativePath(outDir, pool.ResolveImagePath(info.Image)).Replace('\\', '/');
                images.Add(image);
                sb.Append(Clean(image)).Append('\t').Append(Clean(info.Caption ?? "")).Append('\t').Append(Clean(result.Candidates.Concepts[c]))
                  .Append('\t').Append(result.SelectedScores[c][i].ToString("R", CultureInfo.InvariantCulture));
                foreach (int x in extraIdx) sb.Append('\t').Append(Clean(info.Extra[x]));
                sb.Append('\n');
            }
        AtomicFile.WriteAllText(outFull, sb.ToString());
        var cand = result.Candidates;
        return new CurationReport
        {
            Pool = cand.PoolDirectory, PoolKey = cand.PoolKey, PoolRows = cand.PoolRows, Side = cand.Side.ToString().ToLowerInvariant(),
            PerConcept = cand.PerConcept, Cap = result.Cap, Concepts = cand.Concepts.Count, Selected = result.Total, Covered = result.Covered,
            Coverage = result.Covered / (double)Math.Max(1, cand.Concepts.Count), AtCap = result.Outcomes.Count(o => o.Selected >= result.Cap),
            DistinctImages = images.Count, PerConceptCounts = result.Outcomes,
        };
    }

    private static string Clean(string s) => s.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');

    private static string PartitionKey(EmbeddingStore pool, string folder, string raw)
        => Path.GetRelativePath(folder, pool.ResolveImagePath(raw)).Replace('\\', '/');

    private static float[] Normalized(float[] data, int rows, int cols)
    {
        var r = new float[checked(rows * cols)];
        for (int i = 0; i < rows; i++)
        {
            var src = data.AsSpan(i * cols, cols);
            float norm = TensorPrimitives.Norm(src);
            TensorPrimitives.Divide(src, norm > 0 ? norm : 1f, r.AsSpan(i * cols, cols));
        }
        return r;
    }
}
