using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Search;

/// <summary>What <see cref="ImageIndex.Update(IndexSource, IProgress{IndexProgress}, CancellationToken)"/> indexes: a folder tree or an explicit list of files, optionally one
/// shard of it.</summary>
public sealed class IndexSource
{
    private IndexSource(string? root, IReadOnlyList<string>? files) { Root = root; Files = files; }

    /// <summary>The folder tree (recursive), or null for a list.</summary>
    public string? Root { get; }
    /// <summary>The explicit files, or null for a folder.</summary>
    public IReadOnlyList<string>? Files { get; }
    /// <summary>Shard index i of <see cref="ShardCount"/> (scale-out: each shard indexes the files whose path hash falls to it).</summary>
    public int ShardIndex { get; private init; }
    /// <summary>Number of shards (1 = everything).</summary>
    public int ShardCount { get; private init; } = 1;

    /// <summary>Every image under <paramref name="root"/> (recursive; regular files with an image extension). Items of
    /// the index under this folder that are no longer there are removed (or, when their content reappears elsewhere,
    /// moved).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static IndexSource FromFolder(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        string full = Path.GetFullPath(root);
        if (!System.IO.Directory.Exists(full)) throw new DirectoryNotFoundException($"Image folder not found: {root}");
        return new IndexSource(full, null);
    }

    /// <summary>Exactly these files (added or updated); nothing else in the index is removed.</summary>
    public static IndexSource FromFiles(IEnumerable<string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        return new IndexSource(null, files.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList());
    }

    /// <summary>This source restricted to shard <paramref name="index"/> of <paramref name="count"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 0 &lt;= index &lt; count.</exception>
    public IndexSource Shard(int index, int count)
    {
        if (count < 1 || index < 0 || index >= count) throw new ArgumentOutOfRangeException(nameof(index), $"Shard {index}/{count}: need 0 <= i < N.");
        return new IndexSource(Root, Files) { ShardIndex = index, ShardCount = count };
    }

    /// <summary>The path's shard: the same SHA-256 partition of a key as `embed --shard` (<see cref="ShardPartition.Of"/>).</summary>
    internal bool InShard(string path) => ShardCount == 1 || ShardPartition.Of(path, ShardCount) == ShardIndex;

    /// <summary>Whether an indexed path is this source's to remove when it is not found.</summary>
    internal bool Owns(string path) => Root != null && path.StartsWith(Root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal) && InShard(path);
}

/// <summary>Progress of an index update: files examined (hashed or encoded) of those that needed it.</summary>
/// <param name="Done">Files done.</param>
/// <param name="Total">Files that needed work (new or changed).</param>
/// <param name="Encoded">Images encoded so far.</param>
public sealed record IndexProgress(long Done, long Total, long Encoded);

/// <summary>What an update did (the CLI's summary line).</summary>
/// <param name="New">Files added (encoded, or copied from an identical file already indexed).</param>
/// <param name="Changed">Files whose content changed at the same path (re-encoded).</param>
/// <param name="Moved">Files found at a new path with the content of a vanished one (kept, not re-encoded).</param>
/// <param name="Deleted">Items removed because their file is gone.</param>
/// <param name="Unchanged">Files already indexed as they are.</param>
/// <param name="Skipped">Files that could not be indexed, with the reason (unreadable, truncated, not an image).</param>
/// <param name="Encoded">Images this run sent through the encoder.</param>
/// <param name="Total">Items in the index afterwards.</param>
/// <param name="Vectors">What happened to the search structure (exact, HNSW built, updated).</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record IndexUpdateResult(int New, int Changed, int Moved, int Deleted, int Unchanged,
    IReadOnlyList<(string Path, string Reason)> Skipped, long Encoded, long Total, string Vectors, TimeSpan Elapsed)
{
    /// <inheritdoc/>
    public override string ToString()
        => $"{New:N0} new, {Changed:N0} changed, {Moved:N0} moved, {Deleted:N0} deleted, {Skipped.Count:N0} skipped, {Unchanged:N0} unchanged; {Total:N0} {(Total == 1 ? "image" : "images")} indexed ({Vectors})";
}

/// <summary>A file found by a scan.</summary>
/// <param name="Path">Full path.</param>
/// <param name="Size">Bytes.</param>
/// <param name="MtimeMs">Last-write time, Unix milliseconds.</param>
public sealed record ScannedFile(string Path, long Size, long MtimeMs);

/// <summary>What an index update will do (<see cref="ImageIndex.Plan"/>): counts for a progress bar or a dry run.</summary>
public sealed class IndexPlan
{
    internal IndexPlan(long generation, List<(string Path, string Reason)> skipped) { Generation = generation; Skipped = skipped; }
    internal long Generation { get; }
    internal List<(long Id, ScannedFile File)> Touches { get; } = [];
    internal List<(long Id, ScannedFile File)> Moves { get; } = [];
    internal List<long> Deletes { get; } = [];
    internal List<(ScannedFile File, string Sha, CatalogEntry? Replaces)> Encode { get; } = [];
    /// <summary>Files that cannot be indexed so far (unreadable, not regular files); decoding failures add to these during the update.</summary>
    public IReadOnlyList<(string Path, string Reason)> Skipped { get; }
    /// <summary>Files already indexed as they are.</summary>
    public int Unchanged { get; internal set; }
    /// <summary>Files to add or replace (new, changed or copies); the copies of indexed content are not encoded.</summary>
    public int ToEncode => Encode.Count;
    /// <summary>Files found at a new path with a vanished item's content.</summary>
    public int Moved => Moves.Count;
    /// <summary>Items whose file is gone.</summary>
    public int Deleted => Deletes.Count;
}

public sealed partial class ImageIndex
{

    /// <summary>
    /// Works out what <see cref="Update(IndexPlan, IProgress{IndexProgress}?, CancellationToken)"/> would do for
    /// <paramref name="source"/>, reading only what changed: files with the size and last-write time they were indexed
    /// with are not even opened; the others are hashed (SHA-256, in parallel) to tell a touched, changed, moved or
    /// copied file from a new one. Nothing is written.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The source folder no longer exists.</exception>
    public IndexPlan Plan(IndexSource source, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ThrowIfDisposed();
        var skipped = new List<(string Path, string Reason)>();
        var scanned = Scan(source, skipped);
        var existing = _catalog.Entries().ToDictionary(e => e.Path, StringComparer.Ordinal);
        var seen = scanned.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        var vanished = existing.Values.Where(e => !seen.Contains(e.Path) && source.Owns(e.Path)).ToList();
        var plan = new IndexPlan(_catalog.Generation, skipped);
        var toHash = new List<ScannedFile>();
        foreach (var f in scanned)
        {
            if (existing.TryGetValue(f.Path, out var e) && e.Size == f.Size && e.MtimeMs == f.MtimeMs) plan.Unchanged++;
            else toHash.Add(f);
        }
        var hashes = HashAll(toHash, skipped, cancellationToken);
        var vanishedBySha = vanished.GroupBy(e => e.Sha256).ToDictionary(g => g.Key, g => new Queue<CatalogEntry>(g));
        foreach (var f in toHash)
        {
            if (!hashes.TryGetValue(f.Path, out var sha)) continue; // unreadable: reported in skipped
            if (existing.TryGetValue(f.Path, out var e))
            {
                if (e.Sha256 == sha) { plan.Touches.Add((e.Id, f)); plan.Unchanged++; } // same bytes, new stat
                else plan.Encode.Add((f, sha, e));
            }
            else if (vanishedBySha.TryGetValue(sha, out var q) && q.Count > 0) plan.Moves.Add((q.Dequeue().Id, f));
            else plan.Encode.Add((f, sha, null));
        }
        foreach (var q in vanishedBySha.Values) plan.Deletes.AddRange(q.Select(e => e.Id));
        return plan;
    }

    /// <summary>Plans and applies an update of <paramref name="source"/> (see the other overload).</summary>
    public IndexUpdateResult Update(IndexSource source, IProgress<IndexProgress>? progress = null, CancellationToken cancellationToken = default)
        => Update(Plan(source, cancellationToken), progress, cancellationToken);

    /// <summary>
    /// Applies <paramref name="plan"/>: moves and touched files keep their entry (no re-encoding), vanished files are
    /// removed, new and changed files are encoded on the encoder's parallel path (several batches in flight) and
    /// projected; a copy of content already indexed reuses its vectors; unreadable or undecodable files are reported
    /// and skipped, never indexed. Every batch commits in one transaction: a run killed at any point leaves no
    /// half-written entry, and running it again finishes the work. Then the HNSW graph is brought up to date.
    /// </summary>
    /// <param name="plan">From <see cref="Plan"/> on this index.</param>
    /// <param name="progress">Receives progress after every batch (files of <see cref="IndexPlan.ToEncode"/> + copies).</param>
    /// <param name="cancellationToken">Stops between batches; what was committed stays.</param>
    /// <exception cref="OutputLockedException">Another process is writing this index.</exception>
    /// <exception cref="InvalidOperationException">The index changed since the plan was made (plan again).</exception>
    /// <exception cref="OperationCanceledException">Cancelled (the committed batches stay in the index).</exception>
    public IndexUpdateResult Update(IndexPlan plan, IProgress<IndexProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ThrowIfDisposed();
        var clock = Stopwatch.StartNew();
        using var writer = OutputLock.Acquire(Directory);
        if (_catalog.Generation != plan.Generation)
            throw new InvalidOperationException($"The index at {Directory} changed since this plan was made (generation {plan.Generation} -> {_catalog.Generation}); plan again.");
        long gen = plan.Generation + 1;
        var skipped = plan.Skipped.ToList();
        using (var tx = _catalog.Begin())
        {
            _catalog.SetMeta("generation", gen.ToString(CultureInfo.InvariantCulture), tx);
            foreach (var (id, f) in plan.Touches.Concat(plan.Moves)) _catalog.Relocate(tx, id, f.Path, f.Size, f.MtimeMs, gen);
            foreach (var id in plan.Deletes) _catalog.Remove(tx, id, gen);
            tx.Commit();
        }
        int added = 0, changed = 0;
        long encoded = EncodeAndInsert(plan.Encode, gen, skipped, progress, ref added, ref changed, cancellationToken);
        string vectors = EmbeddedVectors.Sync(_catalog, Directory, Dimension, Options);
        Reload();
        return new IndexUpdateResult(added, changed, plan.Moves.Count, plan.Deletes.Count, plan.Unchanged, skipped, encoded, _vectors.Count, vectors, clock.Elapsed);
    }

    private List<ScannedFile> Scan(IndexSource source, List<(string Path, string Reason)> skipped)
    {
        var exts = Options.Extensions.Select(e => e.ToLowerInvariant()).ToHashSet();
        IEnumerable<string> paths;
        if (source.Root != null)
        {
            var notFiles = new List<(string Path, string Reason)>();
            paths = InputFiles.EnumerateFilesOnce(source.Root, notFiles)
                .Where(p => exts.Contains(Path.GetExtension(p).ToLowerInvariant())).ToList();
            skipped.AddRange(notFiles.Where(s => exts.Contains(Path.GetExtension(s.Path).ToLowerInvariant())));
        }
        else paths = source.Files!;
        var list = new List<ScannedFile>();
        foreach (var p in paths)
        {
            if (!source.InShard(p)) continue;
            var info = new FileInfo(p);
            if (!info.Exists) { skipped.Add((p, "file not found")); continue; }
            var kind = InputFiles.KindOf(p);
            if (kind != FileKind.Regular) { skipped.Add((p, $"{InputFiles.Describe(kind)}, not a regular file")); continue; }
            list.Add(new ScannedFile(p, info.Length, new DateTimeOffset(info.LastWriteTimeUtc).ToUnixTimeMilliseconds()));
        }
        return list;
    }

    private static Dictionary<string, string> HashAll(List<ScannedFile> files, List<(string Path, string Reason)> skipped, CancellationToken ct)
    {
        var result = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var failed = new ConcurrentBag<(string, string)>();
        Parallel.ForEach(files, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount }, f =>
        {
            try
            {
                using var s = File.OpenRead(f.Path);
                result[f.Path] = Convert.ToHexStringLower(SHA256.HashData(s));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { failed.Add((f.Path, $"cannot be read: {e.Message}")); }
        });
        skipped.AddRange(failed.OrderBy(x => x.Item1, StringComparer.Ordinal));
        return new Dictionary<string, string>(result, StringComparer.Ordinal);
    }

    private long EncodeAndInsert(List<(ScannedFile File, string Sha, CatalogEntry? Replaces)> work, long gen,
        List<(string Path, string Reason)> skipped, IProgress<IndexProgress>? progress, ref int added, ref int changed, CancellationToken ct)
    {
        // Files whose content is already indexed (a copy) reuse its vectors; each distinct new content is encoded once.
        var reuse = new List<(ScannedFile File, string Sha, CatalogEntry? Replaces, float[] Encoder, float[] Aligned)>();
        var fresh = new List<(ScannedFile File, string Sha, CatalogEntry? Replaces)>();
        foreach (var w in work)
        {
            if (_catalog.VectorsOfSha(w.Sha) is { } v) reuse.Add((w.File, w.Sha, w.Replaces, v.Encoder, v.Aligned));
            else fresh.Add(w);
        }
        if (reuse.Count > 0)
        {
            using var tx = _catalog.Begin();
            foreach (var r in reuse) Put(tx, r.File, r.Sha, r.Replaces, r.Encoder, r.Aligned, gen, ref added, ref changed);
            tx.Commit();
        }
        var firstOfSha = fresh.GroupBy(f => f.Sha).Select(g => g.First()).ToList();
        var dupes = fresh.GroupBy(f => f.Sha).ToDictionary(g => g.Key, g => g.Skip(1).ToList());
        long encoded = 0, done = reuse.Count, total = work.Count;
        progress?.Report(new IndexProgress(done, total, 0));
        int di = _imageEncoder.Identity.Dimension;
        var paths = firstOfSha.Select(f => f.File.Path).ToList();
        foreach (var batch in ImageFileEncoding.Encode(_imageEncoder, paths, Options.BatchSize, Options.Concurrency, ct))
        {
            var ok = Enumerable.Range(0, batch.Count).Where(i => batch.Pooled[i] != null).ToList();
            var pooled = new float[checked(ok.Count * di)];
            for (int j = 0; j < ok.Count; j++)
            {
                var v = batch.Pooled[ok[j]]!;
                if (v.Length != di) throw new InvalidOperationException($"The image encoder returned {v.Length} values for {paths[batch.Start + ok[j]]}, expected {di}.");
                v.CopyTo(pooled, j * di);
            }
            var aligned = ok.Count == 0 ? null : Model.ProjectImages(new EmbeddingMatrix(pooled, ok.Count, di));
            if (aligned != null) FiniteCheck.Require(aligned, $"the aligned embeddings of model '{Model.Name}'");
            using var tx = _catalog.Begin();
            for (int i = 0, j = 0; i < batch.Count; i++)
            {
                var w = firstOfSha[batch.Start + i];
                var all = dupes[w.Sha].Prepend(w);
                if (batch.Pooled[i] is null)
                {
                    foreach (var d in all)
                    {
                        skipped.Add((d.File.Path, batch.Errors[i] ?? "cannot be encoded"));
                        // A file that changed into something unreadable no longer has the indexed content: drop the old entry.
                        if (d.Replaces is { } old) _catalog.Remove(tx, old.Id, gen);
                    }
                    continue;
                }
                var enc = pooled.AsSpan(j * di, di).ToArray();
                var al = aligned!.Row(j).ToArray();
                j++;
                foreach (var d in all) Put(tx, d.File, d.Sha, d.Replaces, enc, al, gen, ref added, ref changed);
            }
            tx.Commit();
            encoded += ok.Count;
            for (int i = 0; i < batch.Count; i++) done += 1 + dupes[firstOfSha[batch.Start + i].Sha].Count;
            progress?.Report(new IndexProgress(done, total, encoded));
        }
        return encoded;
    }

    private void Put(Microsoft.Data.Sqlite.SqliteTransaction tx, ScannedFile f, string sha, CatalogEntry? replaces, float[] encoder, float[] aligned,
        long gen, ref int added, ref int changed)
    {
        if (replaces is { } old) { _catalog.Remove(tx, old.Id, gen); changed++; }
        else added++;
        _catalog.Insert(tx, f.Path, sha, f.Size, f.MtimeMs, gen, encoder, aligned);
    }

    /// <summary>Merges shard indexes (built with <see cref="IndexSource.Shard"/> into their own folders, e.g. one per
    /// Slurm array task) into this index: each shard's items are copied with their vectors (no image re-encoded); an
    /// item already here at the same path is replaced. The shards must have been built with this index's model.</summary>
    /// <param name="shardDirectories">The shard index folders.</param>
    /// <returns>Items merged.</returns>
    /// <exception cref="IndexModelMismatchException">A shard was built with another model.</exception>
    /// <exception cref="DirectoryNotFoundException">A shard folder holds no index.</exception>
    public long Merge(IEnumerable<string> shardDirectories)
    {
        ArgumentNullException.ThrowIfNull(shardDirectories);
        ThrowIfDisposed();
        using var writer = OutputLock.Acquire(Directory);
        long gen = _catalog.Generation + 1, merged = 0;
        var existing = _catalog.Entries().ToDictionary(e => e.Path, StringComparer.Ordinal);
        using (var tx = _catalog.Begin())
        {
            _catalog.SetMeta("generation", gen.ToString(CultureInfo.InvariantCulture), tx);
            foreach (var dir in shardDirectories)
            {
                if (!IndexCatalog.Exists(dir)) throw new DirectoryNotFoundException($"No index in {dir} (expected {IndexCatalog.FileName}).");
                using var shard = IndexCatalog.Open(dir, readOnly: true);
                if (shard.GetMeta("model_fingerprint") != ModelFingerprint)
                    throw new IndexModelMismatchException($"The shard {dir} was built with model '{shard.GetMeta("model_name")}' (fingerprint {Short(shard.GetMeta("model_fingerprint") ?? "?")}), not this index's (fingerprint {Short(ModelFingerprint)}).");
                var encoders = shard.EncoderVectors().ToDictionary(x => x.Id, x => x.Encoder);
                foreach (var (e, aligned) in shard.Aligned())
                {
                    if (existing.Remove(e.Path, out var old)) _catalog.Remove(tx, old.Id, gen);
                    _catalog.Insert(tx, e.Path, e.Sha256, e.Size, e.MtimeMs, gen, encoders[e.Id], aligned);
                    merged++;
                }
            }
            tx.Commit();
        }
        EmbeddedVectors.Sync(_catalog, Directory, Dimension, Options);
        Reload();
        return merged;
    }
}
