using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Cli;
using MLNet.Align.Search;

namespace MLNet.Align.Bench;

/// <summary>
/// `mlnet-align bench --suites search`: the image index (<see cref="ImageIndex"/>'s embedded backend) against hnswlib
/// (ANN) and FAISS IndexFlatIP (exact) on the same vectors, same M and ef, in one run with the load average recorded
/// per round. Base vectors are the real aligned image vectors of existing indexes (deduplicated by content), padded
/// with real-plus-Gaussian-noise vectors (re-normalised) beyond them, labelled per size. Text queries are the pairs
/// file's captions and "a photo of a {label}." prompts through the model's text side; image queries are held-out real
/// photos' aligned vectors. Measured: recall@1/10/100 of the product search path (ANN + exact fp32 re-scoring) against
/// exact search at fp32/fp16/int8, filtered recall and results returned at 1/10/50% selectivity, recall after 10%
/// deletes (tombstones), latency p50/p99 at concurrency 1 and 2 apart from query encoding, an ef sweep for the
/// equal-recall speed ratio, exact search speed, build vectors/s, RAM and disk bytes per vector, re-index time after
/// 1% of the files changed, and photo retrieval through the index against the model's own retrieval evaluation.
/// </summary>
public static class BenchSearch
{
    private static readonly int[] EfSweep = [16, 32, 64, 128, 256, 512];
    /// <summary>The shipped ef_search (<see cref="ImageIndexOptions.ExpansionSearch"/>): targets are measured there.</summary>
    private static readonly int Ef = new ImageIndexOptions().ExpansionSearch;
    private static readonly double[] Selectivities = [0.01, 0.10, 0.50];
    private const int KMax = 100;

    private static void Log(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] search: {line}");

    /// <summary>Adds the suite's options to the bench command; the returned function runs the suite for a parse result
    /// (pairs file, rounds, work folder).</summary>
    public static Func<ParseResult, string, int, string, JsonObject> AddOptions(Command cmd)
    {
        var model = new Option<string?>("--search-model") { Description = "search suite: aligned-model bundle (pooled image side)." };
        var real = new Option<string?>("--search-real") { Description = "search suite: comma-separated index folders whose aligned vectors are the real base vectors (deduplicated by content SHA-256; the first is copied for the re-index timing)." };
        var labels = new Option<string?>("--search-labels") { Description = "search suite: CSV with a 'label' column; 'a photo of a {label}.' prompts join the captions as text queries." };
        var sizes = new Option<string>("--search-sizes") { Description = "search suite: index sizes (real vectors first, real plus noise beyond them); 1000000 is optional (long build).", DefaultValueFactory = _ => "10000,100000" };
        var sigma = new Option<double>("--search-sigma") { Description = "search suite: per-coordinate standard deviation of the Gaussian noise added to a real vector (then re-normalised) for the padding vectors.", DefaultValueFactory = _ => 0.025 };
        var queries = new Option<string>("--search-queries") { Description = "search suite: captions,prompts,held-out image queries.", DefaultValueFactory = _ => "400,200,300" };
        foreach (var o in new Option[] { model, real, labels, sizes, sigma, queries }) cmd.Options.Add(o);
        return (parse, pairs, rounds, work) =>
        {
            string m = parse.GetValue(model) ?? throw new ArgumentException("--suites search needs --search-model.");
            string r = parse.GetValue(real) ?? throw new ArgumentException("--suites search needs --search-real (index folders holding real aligned vectors).");
            var ns = ParseInts(parse.GetValue(sizes)!, "--search-sizes");
            var qs = ParseInts(parse.GetValue(queries)!, "--search-queries");
            if (qs.Length != 3) throw new ArgumentException("--search-queries: give captions,prompts,images.");
            return Run(m, r.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), pairs, parse.GetValue(labels),
                ns, rounds, Path.Combine(work, "search"), parse.GetValue(sigma), qs[0], qs[1], qs[2]);
        };
    }

    private static int[] ParseInts(string s, string what) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(x => int.TryParse(x, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 0 ? v : throw new ArgumentException($"{what}: '{x}' is not a count.")).ToArray();

    public static JsonObject Run(string modelDir, string[] realIndexes, string pairsPath, string? labelsPath, int[] sizes, int rounds,
        string workDir, double sigma, int captionQueries, int promptQueries, int imageQueries)
    {
        if (rounds < 1) throw new ArgumentException($"--rounds must be >= 1, got {rounds}.");
        Directory.CreateDirectory(workDir);
        var clock = Stopwatch.StartNew();
        var result = new JsonObject
        {
            ["what"] = "ours = MLNet.Align.Search's embedded backend (USearch HNSW built as EmbeddedVectors.Sync builds it, one Add per item; queries through EmbeddedVectors.Search: graph walked at ef and asked for its best max(4k, 40) candidates (ef of them below ef 40), re-scored exactly in fp32, filters as shipped); recall = |top-k ∩ exact top-k| / k against exact fp32 search over the same base; latencies are index time only (the query vector given), query encoding reported apart",
            ["loadavg_at_start"] = BenchCommand.LoadAvg(), ["cores"] = Environment.ProcessorCount,
            ["our_env"] = ThreadEnv(Environment.GetEnvironmentVariables().Keys.Cast<string>().ToDictionary(k => k, k => Environment.GetEnvironmentVariable(k))),
            ["hnsw"] = new JsonObject { ["M"] = 16, ["ef_construction"] = 128, ["ef_search"] = Ef, ["ef_sweep"] = new JsonArray(EfSweep.Select(e => (JsonNode)e).ToArray()) },
        };
        using var model = AlignedModel.Load(modelDir);
        int dim = model.EmbeddingDimension;
        var pairs = PairsFile.Read(pairsPath);

        // ---- real vectors (deduplicated by content)
        var (real, realPaths, realSources) = LoadReal(realIndexes, dim);
        int R = realPaths.Count;
        Log($"{R:N0} distinct real aligned vectors from {string.Join(", ", realIndexes)}");

        // ---- photo retrieval through the index vs the model's retrieval evaluation; the index also embeds the queries
        string cocoDir = Path.Combine(workDir, "pairs-index");
        using var cocoIndex = ImageIndex.Open(cocoDir, model, new ImageIndexOptions());
        Log($"pairs index: {cocoIndex.Update(IndexSource.FromFiles(pairs.Images))}");
        result["photo_retrieval"] = PhotoRetrieval(model, cocoIndex, pairs, workDir);

        // ---- queries
        var texts = pairs.Rows.Select(r => r.Caption).Where(c => !string.IsNullOrWhiteSpace(c)).Select(c => c!).Distinct().ToList();
        texts = Spread(texts, captionQueries);
        int nCaptions = texts.Count;
        if (labelsPath != null)
        {
            var labels = File.ReadLines(labelsPath).Skip(1).Select(l => l.Split(',')).Where(p => p.Length > 1).Select(p => p[1].Trim()).Distinct().ToList();
            texts.AddRange(Spread(labels, promptQueries).Select(l => $"a photo of a {l}."));
        }
        var textEncodeMs = new List<double>();
        var textQ = new List<float[]>();
        foreach (var t in texts)
        {
            long t0 = Stopwatch.GetTimestamp();
            textQ.Add(cocoIndex.Embed(SearchQuery.ForText(t)));
            textEncodeMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        var rng = new Random(20240611);
        var heldOut = Enumerable.Range(0, R).OrderBy(_ => rng.Next()).Take(Math.Min(imageQueries, R / 4)).ToHashSet();
        var imageQ = heldOut.Order().Select(i => real.AsSpan(i * dim, dim).ToArray()).ToList();
        var imageEncodeMs = new List<double>();
        foreach (var i in heldOut.Order().Take(30).Where(i => File.Exists(realPaths[i])))
        {
            long t0 = Stopwatch.GetTimestamp();
            cocoIndex.Embed(SearchQuery.ForImage(realPaths[i]));
            imageEncodeMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        result["queries"] = new JsonObject
        {
            ["text"] = textQ.Count, ["text_captions"] = nCaptions, ["text_prompts"] = textQ.Count - nCaptions,
            ["image"] = imageQ.Count, ["image_source"] = "held-out real photos (removed from every base), their stored aligned vectors",
            ["text_encoding_ms"] = Pcts(textEncodeMs), ["image_encoding_ms"] = Pcts(imageEncodeMs),
            ["encoding_note"] = "ImageIndex.Embed one query at a time (text: MiniLM + projector; image: decode + ResNet-18 + projector), measured apart from the index time below",
        };
        var baseReal = Enumerable.Range(0, R).Where(i => !heldOut.Contains(i)).ToArray();
        var queries = textQ.Concat(imageQ).ToArray();
        int nText = textQ.Count;

        // ---- sizes
        var bySize = new JsonObject();
        string script = FindPeer();
        foreach (int n in sizes.Order())
        {
            Log($"size {n:N0} (load {BenchCommand.LoadAvg()})");
            bySize[n.ToString(CultureInfo.InvariantCulture)] = Size(n, real, baseReal, dim, sigma, queries, nText, rounds, Path.Combine(workDir, $"n{n}"), script);
        }
        if (!sizes.Contains(1_000_000)) bySize["1000000"] = new JsonObject { ["run"] = false, ["why"] = "optional (--search-sizes ...,1000000): a single-threaded 1M x 384 build per quantisation plus the hnswlib build does not fit the suite's time on 2 shared cores" };
        result["sizes"] = bySize;

        // ---- re-index after 1% of the files changed
        try { result["reindex_1pct"] = Reindex(realIndexes[0], model, workDir); }
        catch (Exception e) when (e is IOException or InvalidOperationException or SqliteException or UnauthorizedAccessException)
        { result["reindex_1pct"] = new JsonObject { ["run"] = false, ["why"] = e.Message }; }

        result["targets"] = Targets(result);
        result["loadavg_at_end"] = BenchCommand.LoadAvg();
        result["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        Console.WriteLine(Markdown(result));
        return result;
    }

    // ------------------------------------------------------------------ data

    private static (float[] Vectors, List<string> Paths, List<string> Sources) LoadReal(string[] dirs, int dim)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var paths = new List<string>(); var sources = new List<string>();
        var vecs = new List<float>();
        foreach (var dir in dirs)
        {
            using var c = IndexCatalog.Open(dir, readOnly: true);
            var shaOf = c.Entries().ToDictionary(e => e.Id, e => e.Sha256);
            foreach (var (e, v) in c.Aligned())
            {
                if (v.Length != dim) throw new InvalidDataException($"{dir}: {v.Length}-d vectors, the model gives {dim}.");
                if (!seen.Add(shaOf[e.Id])) continue;
                float norm = TensorPrimitives.Norm(v);
                TensorPrimitives.Divide(v, norm, v);
                vecs.AddRange(v); paths.Add(e.Path); sources.Add(dir);
            }
        }
        return (vecs.ToArray(), paths, sources);
    }

    private static List<string> Spread(List<string> items, int count)
        => items.Count <= count ? items.ToList() : Enumerable.Range(0, count).Select(i => items[(int)((long)i * items.Count / count)]).ToList();

    /// <summary>n base vectors: the real ones (in a fixed shuffled order), then real + N(0, sigma^2 I) re-normalised.</summary>
    private static (float[] Base, int RealCount, double NoiseCosine) MakeBase(int n, float[] real, int[] baseReal, int dim, double sigma)
    {
        var b = new float[(long)n * dim];
        int r = Math.Min(n, baseReal.Length);
        for (int i = 0; i < r; i++) Array.Copy(real, (long)baseReal[i] * dim, b, (long)i * dim, dim);
        var rng = new Random(7);
        double cosSum = 0;
        var v = new float[dim];
        for (int i = r; i < n; i++)
        {
            var src = real.AsSpan(baseReal[i % baseReal.Length] * dim, dim);
            for (int j = 0; j < dim; j++) v[j] = src[j] + (float)(sigma * Gaussian(rng));
            float norm = TensorPrimitives.Norm(v);
            TensorPrimitives.Divide(v, norm, v);
            cosSum += TensorPrimitives.Dot(v, src);
            v.CopyTo(b, (long)i * dim);
        }
        return (b, r, n > r ? cosSum / (n - r) : double.NaN);
    }

    private static double Gaussian(Random rng)
    {
        double u = 1 - rng.NextDouble(), w = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * w);
    }

    /// <summary>Exact top-KMax rows per query (unfiltered) and top-10 rows per query under each selectivity filter.</summary>
    private static (int[][] Top, int[][][] Filtered, double[] Top1) GroundTruth(float[] b, int n, int dim, float[][] q, long[] mtimes, long[] thresholds)
    {
        var top = new int[q.Length][]; var filtered = new int[thresholds.Length][][]; var top1 = new double[q.Length];
        for (int s = 0; s < thresholds.Length; s++) filtered[s] = new int[q.Length][];
        Parallel.For(0, q.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, () => new float[n], (i, _, scores) =>
        {
            for (int r = 0; r < n; r++) scores[r] = TensorPrimitives.Dot(q[i], b.AsSpan(r * dim, dim));
            top[i] = TopRows(scores, n, KMax, null);
            top1[i] = scores[top[i][0]];
            for (int s = 0; s < thresholds.Length; s++) { long t = thresholds[s]; filtered[s][i] = TopRows(scores, n, 10, r => mtimes[r] < t); }
            return scores;
        }, _ => { });
        return (top, filtered, top1);
    }

    private static int[] TopRows(float[] scores, int n, int k, Func<int, bool>? filter)
    {
        var heap = new PriorityQueue<int, float>(k + 1);
        for (int r = 0; r < n; r++)
        {
            if (filter != null && !filter(r)) continue;
            if (heap.Count < k) heap.Enqueue(r, scores[r]);
            else if (heap.TryPeek(out _, out float worst) && scores[r] > worst) heap.EnqueueDequeue(r, scores[r]);
        }
        var list = new List<int>(heap.Count);
        while (heap.TryDequeue(out int row, out _)) list.Add(row);
        list.Reverse();
        return list.ToArray();
    }

    // ------------------------------------------------------------------ one size

    private static JsonObject Size(int n, float[] real, int[] baseReal, int dim, double sigma, float[][] queries, int nText, int rounds, string dir, string script)
    {
        Directory.CreateDirectory(dir);
        var (b, realCount, noiseCos) = MakeBase(n, real, baseReal, dim, sigma);
        var rng = new Random(11);
        var mtimes = Enumerable.Range(0, n).Select(_ => (long)rng.Next(0, 1_000_000)).ToArray();
        var thresholds = Selectivities.Select(s => (long)(s * 1_000_000)).ToArray();
        var gtClock = Stopwatch.StartNew();
        var (gt, gtFiltered, top1) = GroundTruth(b, n, dim, queries, mtimes, thresholds);
        Log($"  {n:N0}: exact ground truth in {gtClock.Elapsed.TotalSeconds:F1} s");
        var res = new JsonObject
        {
            ["run"] = true, ["vectors"] = n, ["real_vectors"] = realCount, ["noise_vectors"] = n - realCount,
            ["label"] = n == realCount ? "real aligned vectors" : $"{realCount:N0} real + {n - realCount:N0} real-plus-noise (each a real vector + N(0, {sigma}^2) per coordinate, re-normalised; mean cosine to its source {noiseCos:F3})",
            ["mean_top1_cosine_text_queries"] = Math.Round(top1.Take(nText).Average(), 4),
            ["mean_top1_cosine_image_queries"] = Math.Round(top1.Skip(nText).Average(), 4),
        };
        // Peer files: base, queries, our exact ground truth (FAISS flat is checked against it).
        WriteFloats(Path.Combine(dir, "base.f32"), b);
        WriteFloats(Path.Combine(dir, "queries.f32"), queries.SelectMany(x => x).ToArray());
        using (var f = File.Create(Path.Combine(dir, "gt.i32")))
        using (var w = new BinaryWriter(f))
            foreach (var row in gt) for (int k = 0; k < KMax; k++) w.Write(k < row.Length ? row[k] : -1);

        // ---- peer build, then ours per quantisation (fp16, the default, right after the peer: the build ratio)
        var peer = new JsonObject();
        var peerBuild1 = Peer(script, dir, "build", 1, n, dim, queries.Length);
        peer["build_threads_1"] = peerBuild1;
        var quants = new JsonObject();
        EmbeddedVectors? fp16 = null;
        foreach (var quant in new[] { VectorQuantization.Float16, VectorQuantization.Float32, VectorQuantization.Int8 })
        {
            Log($"  {n:N0}: build {quant} (load {BenchCommand.LoadAvg()})");
            var options = new ImageIndexOptions { Quantization = quant, ExpansionSearch = EfSweep[0] };
            long rss0 = Rss();
            var rows = EmbeddedVectors.FromArrays(b, dim, mtimes, options, buildAnn: false, out _);
            long rss1 = Rss();
            var ev = EmbeddedVectors.FromArrays(b, dim, mtimes, options, buildAnn: true, out double buildSeconds);
            long rss2 = Rss();
            rows.Dispose();
            string file = Path.Combine(dir, $"ours-{quant}.usearch");
            long disk = ev.SaveAnn(file);
            File.Delete(file);
            var view = ev.WithExpansion(Ef);
            var q = new JsonObject
            {
                ["build_seconds"] = Math.Round(buildSeconds, 2), ["build_vectors_per_s"] = Math.Round(n / buildSeconds, 1), ["build_threads"] = 1,
                ["ram_bytes_per_vector_graph"] = Math.Round((double)(rss2 - rss1) / n, 1),
                ["ram_bytes_per_vector_row_tables"] = Math.Round((double)(rss1 - rss0) / n, 1),
                ["ram_bytes_per_vector_fp32_rescoring_copy"] = 4 * dim,
                ["ram_note"] = "RSS deltas after an aggressive GC: graph = the USearch index (native), row tables = ids, paths, dictionaries; the fp32 vectors for exact re-scoring are held besides",
                ["disk_bytes_per_vector_graph_file"] = Math.Round((double)disk / n, 1),
                ["loadavg"] = BenchCommand.LoadAvg(),
            };
            var (rt, ri) = Recalls(view, queries, nText, gt);
            q["recall_text"] = rt; q["recall_image"] = ri;
            quants[Name(quant)] = q;
            if (quant == VectorQuantization.Float16) fp16 = ev; else ev.Dispose();
        }
        res["quantisation"] = quants;
        res["catalog_disk_bytes_per_vector_note"] = "the SQLite catalog adds per item the encoder (512 x 4) and aligned (384 x 4) fp32 vectors plus path and hash: see reindex_1pct.catalog_bytes_per_item for a real catalog";

        // ---- fp16 (the default): filters, timings against the peers per round, deletes
        var def = fp16!.WithExpansion(Ef);
        var filt = new JsonObject();
        for (int s = 0; s < Selectivities.Length; s++)
        {
            long t = thresholds[s];
            Func<int, bool> filter = r => def.MtimeMs(r) < t;
            double matching = mtimes.Count(m => m < t) / (double)n;
            var rec = new List<double>(); var returned = new List<double>(); var ms = new List<double>();
            for (int i = 0; i < queries.Length; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                var hits = def.Search(queries[i], 10, filter, exact: false);
                ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                rec.Add(Overlap(hits.Select(h => (int)def.IdOf(h.Row) - 1), gtFiltered[s][i], 10));
                returned.Add(hits.Count / (double)Math.Min(10, gtFiltered[s][i].Length));
            }
            filt[$"{Selectivities[s]:P0}".Replace(" ", "")] = new JsonObject
            {
                ["matching_fraction"] = Math.Round(matching, 4), ["recall_at_10"] = Math.Round(rec.Average(), 4),
                ["results_returned_of_k"] = Math.Round(returned.Average(), 4), ["latency_ms"] = Pcts(ms),
                ["path"] = matching < 0.02 ? "exact scan of the matching rows (filter < 2%)" : "graph with widened candidate list, exact fallback",
            };
        }
        res["filtered_fp16"] = filt;

        var roundsArr = new JsonArray();
        var qpsRatio = new List<double>(); var qpsRatioSameEf = new List<double>(); var qpsRatioByEf = EfSweep.ToDictionary(e => e, _ => new List<double>()); var exactRatio = new List<double>(); var exactRatio2 = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            var rj = new JsonObject { ["round"] = round + 1, ["loadavg_before"] = BenchCommand.LoadAvg() };
            Log($"  {n:N0}: timing round {round + 1}/{rounds} (load {BenchCommand.LoadAvg()})");
            var sweep = new JsonArray();
            var ours = new List<(int Ef, double R, double Q)>();
            foreach (int ef in EfSweep)
            {
                var v = fp16.WithExpansion(ef);
                var (lat, found) = Fastest(() => Timed(v, queries, 10, exact: false, threads: 1));
                double recall = Enumerable.Range(0, queries.Length).Average(i => Overlap(found[i], gt[i], 10));
                var e = new JsonObject { ["ef"] = ef, ["recall_at_10"] = Math.Round(recall, 4), ["qps"] = Math.Round(lat.Count / lat.Sum() * 1000, 1), ["latency_ms"] = Pcts(lat) };
                ours.Add((ef, recall, lat.Count / lat.Sum() * 1000));
                sweep.Add(e);
            }
            rj["ours_sweep_concurrency_1"] = sweep;
            var (lat2, _) = Timed(def, queries, 10, exact: false, threads: 2, out double wall2);
            rj[$"ours_ef{Ef}_concurrency_2"] = new JsonObject { ["qps"] = Math.Round(queries.Length / wall2, 1), ["latency_ms"] = Pcts(lat2) };
            int exactN = Math.Min(queries.Length, n >= 500_000 ? 60 : n >= 50_000 ? 200 : queries.Length);
            var eq = queries.Take(exactN).ToArray();
            var (latE, foundE) = Timed(def, eq, 10, exact: true, threads: 1);
            var (_, _) = Timed(def, eq, 10, exact: true, threads: 2, out double wallE2);
            double exactQps = latE.Count / latE.Sum() * 1000, exactQps2 = exactN / wallE2;
            rj["ours_exact"] = new JsonObject
            {
                ["queries"] = exactN, ["latency_ms_concurrency_1"] = Pcts(latE), ["qps_concurrency_1"] = Math.Round(exactQps, 1), ["qps_concurrency_2"] = Math.Round(exactQps2, 1),
                ["agreement_at_10_with_ground_truth"] = Math.Round(Enumerable.Range(0, exactN).Average(i => Overlap(foundE[i], gt[i], 10)), 4),
            };
            var p1 = Peer(script, dir, "query", 1, n, dim, queries.Length);
            var p2 = Peer(script, dir, "query", 2, n, dim, queries.Length);
            rj["peer_threads_1"] = p1; rj["peer_threads_2"] = p2;
            rj["loadavg_after"] = BenchCommand.LoadAvg();
            if (p1["error"] is null)
            {
                var hs = ((JsonArray)p1["hnsw_sweep"]!).Select(x => (R: x!["recall_at_10_k10"]!.GetValue<double>(), Q: x["qps"]!.GetValue<double>(), Ef: x["ef"]!.GetValue<int>())).ToList();
                var equal = new JsonArray();
                foreach (var o in ours)
                {
                    var (hq, note) = QpsAtRecall(hs.Select(h => (h.R, h.Q)).ToList(), o.R);
                    qpsRatioByEf[o.Ef].Add(o.Q / hq);
                    equal.Add(new JsonObject { ["our_ef"] = o.Ef, ["our_recall_at_10"] = Math.Round(o.R, 4), ["our_qps"] = Math.Round(o.Q, 1), ["hnswlib_qps_at_that_recall"] = Math.Round(hq, 1), ["ratio"] = Math.Round(o.Q / hq, 3), ["note"] = note });
                    if (o.Ef == Ef) { qpsRatio.Add(o.Q / hq); qpsRatioSameEf.Add(o.Q / hs.First(h => h.Ef == Ef).Q); }
                }
                rj["equal_recall_vs_hnswlib"] = equal;
                exactRatio.Add(exactQps / p1["flat_qps_single_query"]!.GetValue<double>());
                if (p2["error"] is null) exactRatio2.Add(exactQps2 / p2["flat_qps_batch"]!.GetValue<double>());
            }
            roundsArr.Add(rj);
        }
        res["timing_rounds"] = roundsArr;
        res["peer"] = peer;
        if (peerBuild1["error"] is null)
        {
            double ourBuild = quants["fp16"]!["build_vectors_per_s"]!.GetValue<double>();
            res["ratio_build_fp16_vs_hnswlib_1_thread"] = Math.Round(ourBuild / peerBuild1["build_vectors_per_s"]!.GetValue<double>(), 3);
            res["ratio_build_fp32_vs_hnswlib_1_thread"] = Math.Round(quants["fp32"]!["build_vectors_per_s"]!.GetValue<double>() / peerBuild1["build_vectors_per_s"]!.GetValue<double>(), 3);
        }
        if (qpsRatio.Count > 0)
        {
            res["ratio_qps_at_equal_recall_vs_hnswlib"] = Stat(qpsRatio);
            res["ratio_qps_at_equal_recall_vs_hnswlib_ef"] = Ef;
            res["ratio_qps_at_equal_recall_vs_hnswlib_by_our_ef"] = new JsonObject(qpsRatioByEf.Where(kv => kv.Value.Count > 0).Select(kv => KeyValuePair.Create(kv.Key.ToString(), (JsonNode?)Stat(kv.Value))));
            res[$"ratio_qps_same_ef{Ef}_vs_hnswlib"] = Stat(qpsRatioSameEf);
            res["ratio_exact_vs_faiss_flat_1_thread"] = Stat(exactRatio);
            if (exactRatio2.Count > 0) res["ratio_exact_2_threads_vs_faiss_flat_batch_2_threads"] = Stat(exactRatio2);
        }

        // ---- 10% deletes (tombstoned in the graph, as an update below the compaction fraction leaves them)
        var drop = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(n / 10).ToHashSet();
        using (var after = fp16.WithoutRows(drop))
        {
            var v = after.WithExpansion(Ef);
            double r1 = 0, r10 = 0; int counted = 0;
            for (int i = 0; i < queries.Length; i++)
            {
                var want = gt[i].Where(r => !drop.Contains(r)).Take(10).ToArray();
                if (want.Length < 10) continue;
                var hits = v.Search(queries[i], 10, null, exact: false).Select(h => (int)v.IdOf(h.Row) - 1).ToArray();
                r1 += hits.Length > 0 && hits[0] == want[0] ? 1 : 0;
                r10 += Overlap(hits, want, 10); counted++;
            }
            res["after_10pct_deletes_fp16"] = new JsonObject { ["deleted"] = drop.Count, ["queries"] = counted, ["recall_at_1"] = Math.Round(r1 / counted, 4), ["recall_at_10"] = Math.Round(r10 / counted, 4), ["how"] = "ids removed from the graph (tombstones, no rebuild: 10% < CompactFraction 0.2) and their rows dropped; ground truth = exact top-10 of the remaining rows" };
        }
        File.Delete(Path.Combine(dir, "base.f32"));
        File.Delete(Path.Combine(dir, "hnsw.bin"));
        return res;
    }

    private static (JsonObject Text, JsonObject Image) Recalls(EmbeddedVectors v, float[][] q, int nText, int[][] gt)
    {
        var at = new double[q.Length, 3];
        for (int i = 0; i < q.Length; i++)
        {
            var h10 = v.Search(q[i], 10, null, false).Select(h => h.Row).ToArray();
            var h100 = v.Search(q[i], 100, null, false).Select(h => h.Row).ToArray();
            at[i, 0] = h10.Length > 0 && h10[0] == gt[i][0] ? 1 : 0;
            at[i, 1] = Overlap(h10, gt[i], 10);
            at[i, 2] = Overlap(h100, gt[i], 100);
        }
        JsonObject Of(int from, int to) => new()
        {
            ["recall_at_1"] = Math.Round(Enumerable.Range(from, to - from).Average(i => at[i, 0]), 4),
            ["recall_at_10"] = Math.Round(Enumerable.Range(from, to - from).Average(i => at[i, 1]), 4),
            ["recall_at_100"] = Math.Round(Enumerable.Range(from, to - from).Average(i => at[i, 2]), 4),
            ["queries"] = to - from,
        };
        return (Of(0, nText), Of(nText, q.Length));
    }

    private static double Overlap(IEnumerable<int> found, int[] truth, int k)
    {
        var t = truth.Take(k).ToHashSet();
        return found.Take(k).Count(t.Contains) / (double)Math.Min(k, truth.Length);
    }

    private static (List<double> Ms, int[][] Found) Timed(EmbeddedVectors v, float[][] q, int k, bool exact, int threads)
        => Timed(v, q, k, exact, threads, out _);

    /// <summary>Per-query latency (ms) with <paramref name="threads"/> threads issuing queries concurrently (query i on
    /// thread i mod threads), after a warm-up pass over 20 queries.</summary>
    private static (List<double> Ms, int[][] Found) Timed(EmbeddedVectors v, float[][] q, int k, bool exact, int threads, out double wallSeconds)
    {
        foreach (var x in q.Take(20)) v.Search(x, k, null, exact);
        var ms = new double[q.Length]; var found = new int[q.Length][];
        var wall = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            for (int i = t; i < q.Length; i += threads)
            {
                long t0 = Stopwatch.GetTimestamp();
                var hits = v.Search(q[i], k, null, exact);
                ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                found[i] = hits.Select(h => h.Row).ToArray();
            }
        })).ToList();
        workers.ForEach(w => w.Start()); workers.ForEach(w => w.Join());
        wallSeconds = wall.Elapsed.TotalSeconds;
        return (ms.ToList(), found);
    }

    /// <summary>The fastest of <see cref="Passes"/> timed passes (least summed latency): one pass over the queries takes
    /// about a second, and a single pass moved up to 2x between rounds on this shared machine; the peer takes its
    /// fastest of as many (bench/peer_search.py).</summary>
    private static (List<double> Ms, int[][] Found) Fastest(Func<(List<double> Ms, int[][] Found)> pass)
        => Enumerable.Range(0, Passes).Select(_ => pass()).MinBy(p => p.Ms.Sum());

    /// <summary>Timed passes per sweep point, on both sides.</summary>
    private const int Passes = 3;

    /// <summary>hnswlib's queries/s at <paramref name="recall"/>, interpolated linearly between the sweep points that
    /// bracket it (the sweep's end point when it never reaches it or always exceeds it).</summary>
    private static (double Qps, string Note) QpsAtRecall(List<(double R, double Q)> sweep, double recall)
    {
        var s = sweep.OrderBy(x => x.R).ToList();
        if (recall <= s[0].R) return (s[0].Q, $"hnswlib's lowest sweep recall {s[0].R:F4} >= ours: compared at that point (favours hnswlib's recall)");
        if (recall > s[^1].R) return (s[^1].Q, $"hnswlib never reaches our recall {recall:F4} (max {s[^1].R:F4}): compared at its best point");
        for (int i = 1; i < s.Count; i++)
            if (recall <= s[i].R)
            {
                double f = (recall - s[i - 1].R) / Math.Max(1e-12, s[i].R - s[i - 1].R);
                return (s[i - 1].Q + f * (s[i].Q - s[i - 1].Q), $"interpolated between hnswlib recall {s[i - 1].R:F4} and {s[i].R:F4}");
            }
        return (s[^1].Q, "");
    }

    // ------------------------------------------------------------------ peer

    private static string FindPeer()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string p = Path.Combine(d.FullName, "bench", "peer_search.py");
                if (File.Exists(p)) return p;
            }
        return "bench/peer_search.py";
    }

    private static JsonObject Peer(string script, string dir, string mode, int threads, int n, int dim, int queries)
    {
        if (!File.Exists("/usr/bin/python3") || !File.Exists(script)) return new JsonObject { ["error"] = $"not run: /usr/bin/python3 or {script} missing" };
        string cfg = Path.Combine(dir, $"peer-{mode}-{threads}.json");
        File.WriteAllText(cfg, new JsonObject
        {
            ["mode"] = mode, ["dir"] = dir, ["n"] = n, ["dim"] = dim, ["queries"] = queries, ["threads"] = threads,
            ["m"] = 16, ["ef_construction"] = 128, ["ef"] = Ef, ["passes"] = Passes, ["ef_sweep"] = new JsonArray(EfSweep.Select(e => (JsonNode)e).ToArray()),
            ["k_max"] = KMax, ["latency_queries"] = queries,
        }.ToJsonString());
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script); psi.ArgumentList.Add(cfg);
        string t = threads.ToString(CultureInfo.InvariantCulture);
        psi.Environment["OMP_NUM_THREADS"] = t; psi.Environment["OPENBLAS_NUM_THREADS"] = t; psi.Environment["MKL_NUM_THREADS"] = t;
        psi.Environment.Remove("OPENBLAS_CORETYPE"); psi.Environment.Remove("OPENBLAS_L2_SIZE"); psi.Environment.Remove("OMP_PROC_BIND");
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) return new JsonObject { ["error"] = $"peer_search.py {mode} exited {p.ExitCode}: {err.Result.Trim().Split('\n').LastOrDefault()}" };
        var o = JsonNode.Parse(stdout.Trim().Split('\n').Last())!.AsObject();
        o["env_note"] = "OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS set to the thread count; OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, OMP_PROC_BIND unset";
        return o;
    }

    // ------------------------------------------------------------------ photo retrieval

    private static JsonObject PhotoRetrieval(AlignedModel model, ImageIndex exactIndex, PairsFile pairs, string workDir)
    {
        Log("photo retrieval: the model's evaluation vs the same pairs through the index");
        using var imageEncoder = model.OpenImageEncoder();
        using var textEncoder = model.OpenTextEncoder();
        var captions = pairs.Rows.Select(r => r.Caption ?? "").ToArray();
        var images = ProjectedFeatures.Images(model, imageEncoder, pairs.Images, CancellationToken.None);
        var texts = ProjectedFeatures.Texts(model, textEncoder, captions, CancellationToken.None);
        var eval = RetrievalEvaluator.Evaluate(images, texts, pairs.Rows.Select(r => r.ImageId).ToArray());
        var res = new JsonObject
        {
            ["pairs"] = pairs.Path, ["images"] = pairs.Images.Count, ["captions"] = captions.Length,
            ["retrieval_eval_t2i"] = new JsonObject { ["r1"] = eval.TextToImage.R1, ["r5"] = eval.TextToImage.R5, ["r10"] = eval.TextToImage.R10 },
            ["how"] = "text query per caption through ImageIndex.Search(SearchQuery.ForText(caption), k=10); Recall@K = the caption's image within the top K; reference = RetrievalEvaluator text->image on the same pairs (what `retrieval eval` prints)",
        };
        // The same catalog with an HNSW graph (ExactBelow = 0), so the graph path is measured too.
        string hnswDir = Path.Combine(workDir, "pairs-index-hnsw");
        if (Directory.Exists(hnswDir)) Directory.Delete(hnswDir, true);
        Directory.CreateDirectory(hnswDir);
        VacuumInto(Path.Combine(exactIndex.Directory, IndexCatalog.FileName), Path.Combine(hnswDir, IndexCatalog.FileName));
        using var hnswIndex = ImageIndex.Open(hnswDir, model, new ImageIndexOptions { ExactBelow = 0 });
        hnswIndex.Update(IndexSource.FromFiles(pairs.Images));
        foreach (var (name, idx) in new[] { ("index_exact", exactIndex), ("index_hnsw_fp16", hnswIndex) })
        {
            int[] hitsAt = new int[3];
            foreach (var row in pairs.Rows)
            {
                if (string.IsNullOrWhiteSpace(row.Caption)) continue;
                var hits = idx.Search(SearchQuery.ForText(row.Caption), new SearchOptions { K = 10 });
                int rank = hits.Select((h, i) => (h, i)).FirstOrDefault(x => x.h.Path == Path.GetFullPath(row.ImagePath), (null!, -1)).Item2;
                if (rank is >= 0 and < 1) hitsAt[0]++;
                if (rank is >= 0 and < 5) hitsAt[1]++;
                if (rank is >= 0 and < 10) hitsAt[2]++;
            }
            double total = pairs.Rows.Count(r => !string.IsNullOrWhiteSpace(r.Caption));
            double r1 = hitsAt[0] / total, r5 = hitsAt[1] / total, r10 = hitsAt[2] / total;
            res[name] = new JsonObject
            {
                ["uses_hnsw"] = idx.UsesApproximateIndex, ["r1"] = r1, ["r5"] = r5, ["r10"] = r10,
                ["max_abs_diff_points"] = Math.Round(100 * new[] { r1 - eval.TextToImage.R1, r5 - eval.TextToImage.R5, r10 - eval.TextToImage.R10 }.Max(Math.Abs), 3),
            };
        }
        return res;
    }

    private static void VacuumInto(string source, string dest)
    {
        using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = source, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "VACUUM INTO $d";
        cmd.Parameters.AddWithValue("$d", dest);
        cmd.ExecuteNonQuery();
    }

    // ------------------------------------------------------------------ re-index after 1% changed

    private static JsonObject Reindex(string sourceIndex, AlignedModel model, string workDir)
    {
        Log($"re-index: copy of {sourceIndex} and its files, then 1% of the files changed (load {BenchCommand.LoadAvg()})");
        string root = Path.Combine(workDir, "reindex"), files = Path.Combine(root, "files"), index = Path.Combine(root, "index");
        if (Directory.Exists(root)) Directory.Delete(root, true);
        Directory.CreateDirectory(files); Directory.CreateDirectory(index);
        List<CatalogEntry> entries;
        using (var c = IndexCatalog.Open(sourceIndex, readOnly: true)) entries = c.Entries();
        entries = entries.Where(e => File.Exists(e.Path)).ToList();
        string prefix = CommonFolder(entries.Select(e => e.Path).ToList());
        foreach (var e in entries)
        {
            string dest = Path.Combine(files, Path.GetRelativePath(prefix, e.Path));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(e.Path, dest);
            File.SetLastWriteTimeUtc(dest, DateTimeOffset.FromUnixTimeMilliseconds(e.MtimeMs).UtcDateTime);
        }
        string catalog = Path.Combine(index, IndexCatalog.FileName);
        VacuumInto(Path.Combine(sourceIndex, IndexCatalog.FileName), catalog);
        using (var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = catalog, Pooling = false }.ToString()))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE items SET path = $n || substr(path, length($o) + 1) WHERE substr(path, 1, length($o)) = $o; DELETE FROM items WHERE substr(path, 1, length($n)) <> $n";
            cmd.Parameters.AddWithValue("$o", prefix.TrimEnd('/') + "/");
            cmd.Parameters.AddWithValue("$n", files.TrimEnd('/') + "/");
            cmd.ExecuteNonQuery();
        }
        long catalogBytes = new FileInfo(catalog).Length;
        // An HNSW graph at this size too (ExactBelow lowered), so the update includes the graph's add/tombstone work.
        var options = new ImageIndexOptions { ExactBelow = 1000 };
        using var idx = ImageIndex.Open(index, model, options);
        var sw = Stopwatch.StartNew();
        var first = idx.Update(IndexSource.FromFolder(files));
        double firstSeconds = sw.Elapsed.TotalSeconds;
        int n = idx.Count;
        var rng = new Random(5);
        var all = Directory.EnumerateFiles(files, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var changed = all.OrderBy(_ => rng.Next()).Take(Math.Max(1, all.Count / 100)).ToList();
        foreach (var f in changed)
        {
            using var s = new FileStream(f, FileMode.Append);
            s.Write(Guid.NewGuid().ToByteArray()); // bytes after the JPEG end marker: new content, still decodable
        }
        sw.Restart();
        var plan = idx.Plan(IndexSource.FromFolder(files));
        double planSeconds = sw.Elapsed.TotalSeconds;
        var upd = idx.Update(plan);
        double total = sw.Elapsed.TotalSeconds;
        return new JsonObject
        {
            ["run"] = true, ["items"] = n, ["changed_files"] = changed.Count, ["catalog_bytes_per_item"] = Math.Round((double)catalogBytes / Math.Max(1, n), 1),
            ["graph"] = "HNSW fp16 kept (ExactBelow lowered to 1,000 for this copy)",
            ["first_update_builds_graph_from_catalog_seconds"] = Math.Round(firstSeconds, 2), ["first_update"] = first.ToString(),
            ["seconds"] = Math.Round(total, 2), ["plan_seconds"] = Math.Round(planSeconds, 2), ["encoded"] = upd.Encoded,
            ["result"] = upd.ToString(), ["loadavg"] = BenchCommand.LoadAvg(),
            ["how"] = "the real index's catalog and files copied (paths rewritten, mtimes kept), then 1% of the files given new content (16 bytes appended) and ImageIndex.Plan + Update timed: scan, SHA-256 of the changed files, decode + ResNet-18 + projection of those, catalog commit, HNSW add + tombstone",
        };
    }

    private static string CommonFolder(List<string> paths)
    {
        string p = Path.GetDirectoryName(paths[0])!;
        foreach (var x in paths)
            while (!x.StartsWith(p.TrimEnd('/') + "/", StringComparison.Ordinal)) p = Path.GetDirectoryName(p)!;
        return p;
    }

    // ------------------------------------------------------------------ report

    private static JsonObject Targets(JsonObject r)
    {
        var t = new JsonObject();
        static JsonObject Check(double? value, double target, string what) => new()
        {
            ["value"] = value is null ? null : Math.Round(value.Value, 4), ["target"] = $">= {target}", ["what"] = what,
            ["pass"] = value is null ? null : value >= target,
        };
        foreach (var (size, node) in r["sizes"]!.AsObject())
        {
            if (node!["run"]!.GetValue<bool>() == false) continue;
            var s = new JsonObject
            {
                ["text_recall_at_10_fp16"] = Check(node["quantisation"]?["fp16"]?["recall_text"]?["recall_at_10"]?.GetValue<double>(), 0.95, "recall@10, text queries, fp16"),
                ["image_recall_at_10_fp16"] = Check(node["quantisation"]?["fp16"]?["recall_image"]?["recall_at_10"]?.GetValue<double>(), 0.98, "recall@10, image queries, fp16"),
                ["qps_at_equal_recall_vs_hnswlib"] = Check(node["ratio_qps_at_equal_recall_vs_hnswlib"]?["median"]?.GetValue<double>(), 1.0, "median over rounds, 1 thread"),
                ["exact_vs_faiss_flat"] = Check(node["ratio_exact_vs_faiss_flat_1_thread"]?["median"]?.GetValue<double>(), 0.8, "single-query exact search, 1 thread, median over rounds"),
                ["build_vs_hnswlib"] = Check(node["ratio_build_fp16_vs_hnswlib_1_thread"]?.GetValue<double>(), 0.8, "fp16 build vectors/s vs hnswlib fp32, 1 thread"),
            };
            t[size] = s;
        }
        var pr = r["photo_retrieval"]!;
        foreach (var name in new[] { "index_exact", "index_hnsw_fp16" })
        {
            double d = pr[name]!["max_abs_diff_points"]!.GetValue<double>();
            t[$"photo_retrieval_{name}"] = new JsonObject { ["max_abs_diff_points"] = d, ["target"] = "<= 0.5 points (R@1/5/10)", ["pass"] = d <= 0.5 };
        }
        return t;
    }

    private static string Markdown(JsonObject r)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"\n### bench --suites search (load {r["loadavg_at_start"]} -> {r["loadavg_at_end"]}, {r["cores"]} cores)\n");
        sb.AppendLine($"| size | vectors | text R@10 fp16 | image R@10 fp16 | text R@10 fp32/int8 | QPS ratio @equal recall | exact vs FAISS | build vs hnswlib | p50/p99 ms (c=1, ef {Ef}) | QPS c=2 |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var (size, node) in r["sizes"]!.AsObject())
        {
            if (node!["run"]!.GetValue<bool>() == false) { sb.AppendLine($"| {size} | not run | | | | | | | | |"); continue; }
            var q = node["quantisation"]!;
            var last = ((JsonArray)node["timing_rounds"]!)[0]!;
            var eDef = ((JsonArray)last["ours_sweep_concurrency_1"]!).First(x => x!["ef"]!.GetValue<int>() == Ef)!;
            sb.AppendLine($"| {size} | {node["real_vectors"]} real + {node["noise_vectors"]} noise | {q["fp16"]!["recall_text"]!["recall_at_10"]} | {q["fp16"]!["recall_image"]!["recall_at_10"]} | {q["fp32"]!["recall_text"]!["recall_at_10"]} / {q["int8"]!["recall_text"]!["recall_at_10"]} | {node["ratio_qps_at_equal_recall_vs_hnswlib"]?["median"]} | {node["ratio_exact_vs_faiss_flat_1_thread"]?["median"]} | {node["ratio_build_fp16_vs_hnswlib_1_thread"]} | {eDef["latency_ms"]!["p50"]} / {eDef["latency_ms"]!["p99"]} | {last[$"ours_ef{Ef}_concurrency_2"]!["qps"]} |");
        }
        var pr = r["photo_retrieval"]!;
        sb.AppendLine($"\nphoto retrieval R@1/5/10: eval {Pc(pr["retrieval_eval_t2i"]!)}; index exact {Pc(pr["index_exact"]!)}; index HNSW {Pc(pr["index_hnsw_fp16"]!)}");
        if (r["reindex_1pct"] is JsonObject ri && ri["run"]!.GetValue<bool>()) sb.AppendLine($"re-index after {ri["changed_files"]} of {ri["items"]} files changed: {ri["seconds"]} s ({ri["result"]})");
        return sb.ToString();
    }

    private static string Pc(JsonNode n) => $"{100 * n["r1"]!.GetValue<double>():F2} / {100 * n["r5"]!.GetValue<double>():F2} / {100 * n["r10"]!.GetValue<double>():F2}";

    // ------------------------------------------------------------------ helpers

    private static string Name(VectorQuantization q) => q switch { VectorQuantization.Float32 => "fp32", VectorQuantization.Int8 => "int8", _ => "fp16" };

    private static JsonObject Pcts(List<double> ms)
    {
        if (ms.Count == 0) return new JsonObject { ["n"] = 0 };
        var s = ms.Order().ToArray();
        double P(double p) => Math.Round(s[Math.Min(s.Length - 1, (int)Math.Round(p / 100 * (s.Length - 1)))], 3);
        return new JsonObject { ["p50"] = P(50), ["p99"] = P(99), ["mean"] = Math.Round(s.Average(), 3), ["n"] = s.Length };
    }

    private static JsonObject Stat(List<double> v)
    {
        var s = v.Order().ToArray();
        double median = s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
        return new JsonObject { ["min"] = Math.Round(s[0], 3), ["median"] = Math.Round(median, 3), ["max"] = Math.Round(s[^1], 3), ["n"] = s.Length };
    }

    private static long Rss()
    {
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true); GC.WaitForPendingFinalizers(); // decommits freed managed memory, so RSS deltas are the new structures'
        try { return long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize; }
        catch (IOException) { return 0; }
    }

    private static JsonObject ThreadEnv(Dictionary<string, string?> env)
        => new(env.Where(kv => kv.Key.StartsWith("OPENBLAS", StringComparison.Ordinal) || kv.Key.StartsWith("OMP_", StringComparison.Ordinal) || kv.Key.StartsWith("MKL_", StringComparison.Ordinal) || kv.Key.StartsWith("DOTNET_", StringComparison.Ordinal))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));

    private static void WriteFloats(string path, float[] values)
    {
        using var f = File.Create(path);
        f.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }
}
