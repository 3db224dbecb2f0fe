using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using SkiaSharp;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Demo.Data;

/// <summary>Building the pairs: the stages of <see cref="DataPreparer.Prepare"/> that run when the pairs are not up to
/// date (read sources, check images, split and link, proxy folders, swap into place).</summary>
public static partial class DataPreparer
{
    /// <summary>Builds the pairs from scratch: each stage below is one step of the data card (subset, image check,
    /// split and link, proxy folders), staged in a temporary folder and swapped into place at the end.</summary>
    private static DataPreparationResult BuildPairs(DataPreparerOptions options, List<IPairSource> sources, string outDir, string fingerprint,
        IProgress<DataPreparationProgress>? progress, CancellationToken ct)
    {
        var perSource = ReadSources(options, sources, progress, ct);
        var checkedImages = CheckImages(perSource, options.MaxImagePixels, progress, ct);
        string staging = Path.Combine(outDir, ".staging-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            Directory.CreateDirectory(staging);
            var split = SplitAndLink(perSource, checkedImages, options, outDir, staging, progress, ct);
            PairsTsv.Write(Path.Combine(staging, "pairs.tsv"), split.Pairs);
            PairsTsv.Write(Path.Combine(staging, "train.tsv"), split.Train);
            PairsTsv.Write(Path.Combine(staging, "heldout.tsv"), split.HeldOut);
            PairsTsv.Write(Path.Combine(staging, "proxy.tsv"), split.Proxy);
            var proxyReports = WriteProxyFolders(split.ProxyItems, options.CopyImages, outDir, staging);
            SwapIntoPlace(outDir, staging);
            return new DataPreparationResult
            {
                OutputDirectory = outDir, Quick = options.Quick,
                PairsTsv = Path.Combine(outDir, "pairs.tsv"), TrainTsv = Path.Combine(outDir, "train.tsv"),
                HeldOutTsv = Path.Combine(outDir, "heldout.tsv"), ProxyTsv = Path.Combine(outDir, "proxy.tsv"),
                Sources = split.Reports, Dropped = checkedImages.Dropped, UndecodableImages = checkedImages.Undecodable,
                Proxy = proxyReports, Labelled = [], PairsFingerprint = fingerprint,
            };
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>One source's build and the pairs kept from it (its fraction, or the quick subset).</summary>
    private sealed record SourcePairs(SourceSelection Selection, PairSourceResult Built, List<SourcePair> Kept);

    /// <summary>Which pairs survive the image check, indexed by position in the concatenation of every source's
    /// kept pairs, with the drop counts overall and per source.</summary>
    private sealed record CheckedImages(HashSet<int> Keep, SortedDictionary<string, int> Dropped, List<string> Undecodable,
        Dictionary<string, SortedDictionary<string, int>> DroppedPerSource);

    /// <summary>The split pairs, the proxy items (pair and proxy task) and the per-source report.</summary>
    private sealed record SplitPairs(List<PairRecord> Pairs, List<PairRecord> Train, List<PairRecord> HeldOut, List<PairRecord> Proxy,
        List<(SourcePair Pair, string Task)> ProxyItems, List<SourceReport> Reports);

    /// <summary>Step 1: builds each source and takes its subset (a hash of the image path below the source's fraction;
    /// in quick mode the first QuickImagesPerSource by that hash).</summary>
    private static List<SourcePairs> ReadSources(DataPreparerOptions options, List<IPairSource> sources,
        IProgress<DataPreparationProgress>? progress, CancellationToken ct)
    {
        var perSource = new List<SourcePairs>();
        for (int s = 0; s < sources.Count; s++)
        {
            ct.ThrowIfCancellationRequested();
            var sel = options.Sources[s];
            progress?.Report(new DataPreparationProgress("pairs", s, sources.Count, $"reading {sel.Name}"));
            var built = sources[s].Build(ct);
            IEnumerable<SourcePair> kept = built.Pairs;
            if (sel.Fraction < 1) kept = kept.Where(p => PairSplitter.UnitHash(HashKey(p), PairSplitter.SubsetSalt) < sel.Fraction);
            if (options.Quick)
                kept = kept.OrderBy(p => PairSplitter.UnitHash(HashKey(p), PairSplitter.SubsetSalt)).ThenBy(p => p.Key, StringComparer.Ordinal)
                    .Take(options.QuickImagesPerSource).OrderBy(p => p.Key, StringComparer.Ordinal);
            perSource.Add(new SourcePairs(sel, built, kept.ToList()));
        }
        return perSource;
    }

    /// <summary>Step 2: decodes every image once and hashes its bytes; undecodable files, images over
    /// <paramref name="maxPixels"/> and exact duplicates (all but the first in ordinal key order) are dropped.</summary>
    private static CheckedImages CheckImages(List<SourcePairs> perSource, long maxPixels, IProgress<DataPreparationProgress>? progress,
        CancellationToken ct)
    {
        var all = perSource.SelectMany(x => x.Kept).ToList();
        var sha = new string?[all.Count];
        var bad = new ConcurrentBag<int>();
        var large = new ConcurrentBag<int>();
        int done = 0;
        Parallel.For(0, all.Count, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            byte[] bytes;
            try { bytes = File.ReadAllBytes(all[i].SourcePath); }
            catch (IOException) { bad.Add(i); return; }
            switch (CheckImage(bytes, maxPixels))
            {
                case ImageCheck.Undecodable: bad.Add(i); return;
                case ImageCheck.TooLarge: large.Add(i); return;
            }
            sha[i] = Convert.ToHexStringLower(SHA256.HashData(bytes));
            int n = Interlocked.Increment(ref done);
            if ((n & 127) == 0) progress?.Report(new DataPreparationProgress("check images", n, all.Count));
        });
        var largeSet = large.ToHashSet();
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var undecodable = bad.Select(i => all[i].SourcePath).OrderBy(p => p, StringComparer.Ordinal).ToList();
        if (undecodable.Count > 0) dropped[Undecodable] = undecodable.Count;
        var firstByHash = new Dictionary<string, string>(StringComparer.Ordinal);
        var keep = new HashSet<int>();
        var droppedPerSource = perSource.ToDictionary(x => x.Selection.Name, x => new SortedDictionary<string, int>(x.Built.Dropped.ToDictionary(k => k.Key, k => k.Value), StringComparer.Ordinal));
        foreach (int i in Enumerable.Range(0, all.Count).OrderBy(i => all[i].Key, StringComparer.Ordinal))
        {
            if (largeSet.Contains(i)) { TuxPaintPairSource.Count(droppedPerSource[all[i].Source], TooLarge); TuxPaintPairSource.Count(dropped, TooLarge); continue; }
            if (sha[i] is null) { TuxPaintPairSource.Count(droppedPerSource[all[i].Source], Undecodable); continue; }
            if (!firstByHash.TryAdd(sha[i]!, all[i].Key)) { TuxPaintPairSource.Count(droppedPerSource[all[i].Source], DuplicateImage); TuxPaintPairSource.Count(dropped, DuplicateImage); continue; }
            keep.Add(i);
        }
        progress?.Report(new DataPreparationProgress("check images", all.Count, all.Count, $"checked {all.Count} images: {undecodable.Count} undecodable, {dropped.GetValueOrDefault(DuplicateImage)} duplicates"));
        return new CheckedImages(keep, dropped, undecodable, droppedPerSource);
    }

    /// <summary>Step 3: links every kept image into the staging folder and assigns its pair to train, held-out or
    /// proxy by a hash of the image path (<see cref="PairSplitter.Assign"/>).</summary>
    private static SplitPairs SplitAndLink(List<SourcePairs> perSource, CheckedImages checkedImages, DataPreparerOptions options,
        string outDir, string staging, IProgress<DataPreparationProgress>? progress, CancellationToken ct)
    {
        var split = new SplitPairs([], [], [], [], [], []);
        int linked = 0;
        int offset = 0;
        foreach (var (sel, built, kept) in perSource)
        {
            int nTrain = 0, nHeld = 0, nProxy = 0, nPairs = 0;
            var images = new HashSet<string>(StringComparer.Ordinal);
            for (int k = 0; k < kept.Count; k++)
            {
                var p = kept[k];
                if (!checkedImages.Keep.Contains(offset + k)) continue;
                ct.ThrowIfCancellationRequested();
                string image = ImagePath(p);
                // An extra view follows its item's side; on the proxy side it is dropped, so it is neither trained on
                // nor changes the proxy set.
                var side = PairSplitter.Assign(HashKey(p), options.HeldOutFraction, options.ProxyFraction, p.ProxyClass is not null || p.ExtraView);
                if (side == PairSplitSide.Proxy && p.ProxyClass is null)
                {
                    TuxPaintPairSource.Count(checkedImages.DroppedPerSource[sel.Name], ExtraViewOfProxyItem);
                    continue;
                }
                Link(outDir, p.SourcePath, Path.Combine(outDir, image), Path.Combine(staging, image), options.CopyImages);
                if ((++linked & 255) == 0) progress?.Report(new DataPreparationProgress("link images", linked, checkedImages.Keep.Count));
                images.Add(image);
                var record = new PairRecord(image, p.Caption, p.Source, p.Label);
                split.Pairs.Add(record); nPairs++;
                switch (side)
                {
                    case PairSplitSide.Train: split.Train.Add(record); nTrain++; break;
                    case PairSplitSide.HeldOut: split.HeldOut.Add(record); nHeld++; break;
                    default: split.Proxy.Add(record with { Label = p.ProxyClass! }); split.ProxyItems.Add((p, p.Source)); nProxy++; break;
                }
            }
            offset += kept.Count;
            split.Reports.Add(new SourceReport(sel.Name, sel.Fraction, built.Candidates, nPairs, images.Count, nTrain, nHeld, nProxy,
                checkedImages.DroppedPerSource[sel.Name]));
        }
        return split;
    }

    /// <summary>Step 4: the proxy ImageFolders, one task per source, classes in ordinal order of their names.</summary>
    private static List<ProxyReport> WriteProxyFolders(List<(SourcePair Pair, string Task)> proxyItems, bool copyImages, string outDir,
        string staging)
    {
        var proxyReports = new List<ProxyReport>();
        foreach (var task in proxyItems.GroupBy(x => x.Task).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var classes = task.Select(x => x.Pair.ProxyClass!).Distinct().OrderBy(c => c, StringComparer.Ordinal).ToList();
            string taskDir = Path.Combine(staging, "proxy", task.Key);
            foreach (var c in classes) Directory.CreateDirectory(Path.Combine(taskDir, ImageFolderDataset.FolderNameForClass(c)));
            foreach (var (p, _) in task)
            {
                string name = p.Key[(p.Key.IndexOf('/') + 1)..].Replace('/', '~');
                string rel = Path.Combine("proxy", task.Key, ImageFolderDataset.FolderNameForClass(p.ProxyClass!), name);
                Link(outDir, p.SourcePath, Path.Combine(outDir, rel), Path.Combine(staging, rel), copyImages);
            }
            File.WriteAllLines(Path.Combine(taskDir, ImageFolderDataset.ClassListFileName),
                classes.Select(c => ImageFolderDataset.FolderNameForClass(c) + "\t" + c), new UTF8Encoding(false));
            proxyReports.Add(new ProxyReport(task.Key, Path.Combine(outDir, "proxy", task.Key), task.Count(), classes,
                task.GroupBy(x => x.Pair.ProxyClass!).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count())));
        }
        return proxyReports;
    }

    /// <summary>Step 5: old outputs out, staged ones in. The manifest is deleted first and written last (by the
    /// caller), so an interrupted swap leaves a fingerprint mismatch and the next run rebuilds.</summary>
    private static void SwapIntoPlace(string outDir, string staging)
    {
        File.Delete(Path.Combine(outDir, ManifestFileName));
        foreach (var entry in new[] { "images", "proxy" })
        {
            string target = Path.Combine(outDir, entry);
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            if (Directory.Exists(Path.Combine(staging, entry))) Directory.Move(Path.Combine(staging, entry), target);
        }
        foreach (var f in new[] { "pairs.tsv", "train.tsv", "heldout.tsv", "proxy.tsv" })
            File.Move(Path.Combine(staging, f), Path.Combine(outDir, f), overwrite: true);
    }

    private enum ImageCheck { Ok, Undecodable, TooLarge }

    /// <summary>Decodes an image fully (a header alone misses truncated data); refuses to allocate huge ones.</summary>
    private static ImageCheck CheckImage(byte[] bytes, long maxPixels)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data);
        if (codec is null || codec.Info.Width <= 0 || codec.Info.Height <= 0) return ImageCheck.Undecodable;
        if ((long)codec.Info.Width * codec.Info.Height > maxPixels) return ImageCheck.TooLarge;
        try
        {
            using var bitmap = SKBitmap.Decode(codec);
            return bitmap is null ? ImageCheck.Undecodable : ImageCheck.Ok;
        }
        catch (Exception e) when (e is not OperationCanceledException) { return ImageCheck.Undecodable; }
    }

    /// <summary>The TSV image path of a source pair (relative to the data folder).</summary>
    private static string ImagePath(SourcePair p) => "images/" + p.Key;

    /// <summary>The input of the split and subset hashes: <see cref="SourcePair.SplitKey"/>, else the image path (so
    /// every pair of the original sources keeps its side).</summary>
    private static string HashKey(SourcePair p) => p.SplitKey ?? ImagePath(p);

    /// <summary>Creates <paramref name="stagedPath"/> as a link to <paramref name="target"/> (relative when the target
    /// lies inside the data folder, so the folder can move with its npm/), or a copy.</summary>
    private static void Link(string outDir, string target, string finalPath, string stagedPath, bool copy)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(stagedPath)!);
        if (!copy)
        {
            string linkTarget = target;
            string root = outDir + Path.DirectorySeparatorChar;
            if (target.StartsWith(root, StringComparison.Ordinal))
                linkTarget = Path.GetRelativePath(Path.GetDirectoryName(finalPath)!, target);
            try { File.CreateSymbolicLink(stagedPath, linkTarget); return; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException) { }
        }
        File.Copy(target, stagedPath, overwrite: true);
    }
}
