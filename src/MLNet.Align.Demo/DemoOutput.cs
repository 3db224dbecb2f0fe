using System.Globalization;
using System.Text;
using System.Text.Json;
using MLNet.Align.Evaluation;
using MLNet.Align.Projection;
using MLNet.Align.Similarity;
using Spectre.Console;
using MLNet.Align.Charts;

namespace MLNet.Align.Demo;

/// <summary>Writes report.json, report.md and the PNG plots of a demo run, and prints the summary table.</summary>
public static class DemoOutput
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void Write(string outDir, DemoReport report, TrainingHistory history, DemoEval ev, AlignedModel model,
        IReadOnlyDictionary<string, IAlignedProjector> baselines, IReadOnlyDictionary<string, LabelledTask> sets, EncoderPairReport stage1)
    {
        var plots = new List<string>();
        if (Plots.Available && report.Showcase is { Shown: > 0 } showcase)
        {
            DemoShowcase.WriteSheet(Path.Combine(outDir, ShowcaseSheet), outDir, report.Predictions, showcase);
            report = report with { Showcase = showcase with { ContactSheet = ShowcaseSheet } };
        }
        WriteAtomic(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(report, Json));
        WriteAtomic(Path.Combine(outDir, "training.json"), history.ToJson());
        if (Plots.Available)
        {
            TrainingCharts.Write(history, Path.Combine(outDir, "training.png"));
            plots.Add("training.png");
            foreach (var name in sets.Keys)
            {
                var zs = ev.ZeroShot(model, name);
                EvaluationCharts.ConfusionMatrix(Path.Combine(outDir, $"confusion_{name}.png"), zs,
                    $"{name}: zero-shot confusion of the served model, {model.Name} (top-1 {zs.Top1:P1}, n = {zs.N}); rows = true class, columns = predicted");
                plots.Add($"confusion_{name}.png");
            }
            var methods = new List<(string Name, MethodScores S)>();
            // The served model (auto's choice, seed 0) first, then the locked-text reference and the closed forms.
            if (report.Auto is { } auto && auto.Rows.FirstOrDefault(r => r.Recipe == auto.WinnerPerSeed[0]) is { } chosen)
                methods.Add(($"train default: auto's choice ({chosen.Recipe})", chosen.Scores[0]));
            methods.Add(("locked text, proxy (mean of seeds)", new MethodScores { ZeroShot = report.ZeroShot, Retrieval = report.Retrieval, ProxyTop1 = report.ProxyTop1 }));
            methods.AddRange(report.Baselines.Select(kv => (kv.Key, kv.Value)));
            var groups = new[] { "i2t R@1", "i2t R@5", "i2t R@10", "t2i R@1", "t2i R@5", "t2i R@10" };
            var held = report.Retrieval["heldout"];
            Plots.GroupedBars(Path.Combine(outDir, "retrieval.png"), methods.Select(m => m.Name).ToList(), groups,
                methods.Select(m => (IReadOnlyList<double>)new[] { Pick(m.S).ImageToText.R1, Pick(m.S).ImageToText.R5, Pick(m.S).ImageToText.R10,
                    Pick(m.S).TextToImage.R1, Pick(m.S).TextToImage.R5, Pick(m.S).TextToImage.R10 }).ToList(),
                $"Held-out retrieval: Recall@K ({held.N} images, {held.Captions} captions, never trained on)", "Recall@K (share of queries)",
                width: 1500, percent: true, valueLabels: true,
                subtitle: $"i2t: image query, its caption among {held.Captions}; t2i: caption query, its image among {held.N}; locked text = mean of {report.Seeds.Count} seeds");
            var sn = report.ZeroShot.Keys.ToList();
            Plots.GroupedBars(Path.Combine(outDir, "zero_shot.png"), methods.Select(m => m.Name).Append("linear probe (supervised)").ToList(),
                sn.Select(k => $"{k} (n = {report.ZeroShot[k].N})").ToList(),
                methods.Select(m => (IReadOnlyList<double>)sn.Select(k => m.S.ZeroShot[k].Top1).ToList())
                    .Append(sn.Select(k => report.LinearProbe[k].Top1).ToList()).ToList(),
                "Zero-shot top-1 accuracy per labelled test set", "top-1 accuracy", width: 1300, percent: true, valueLabels: true,
                subtitle: $"chance 10%; locked text = mean of {report.Seeds.Count} seeds; linear probe = supervised ceiling, not zero-shot");
            SimilarityCharts.EncoderPairHeatmap(Path.Combine(outDir, "cka.png"), stage1, title: CkaTitle(stage1.N));
            plots.AddRange(["retrieval.png", "zero_shot.png", "cka.png"]);
            if (report.Showcase?.ContactSheet is { } sheet) plots.Add(sheet);
        }
        WriteAtomic(Path.Combine(outDir, "report.md"), Markdown(report, plots));
    }

    private static RetrievalResult Pick(MethodScores s) => s.Retrieval["heldout"];

    /// <summary>The report with every path relative to <paramref name="outDir"/> (models, selection folder, curated
    /// subset and pool, showcase images), so a report that is shared does not carry this machine's folders; paths
    /// already relative are kept.</summary>
    /// <param name="report">The report.</param>
    /// <param name="outDir">The demo's --out folder.</param>
    public static DemoReport RelativePaths(DemoReport report, string outDir)
    {
        string R(string p) => Path.IsPathRooted(p) ? Path.GetRelativePath(outDir, p) : p;
        return report with
        {
            Models = report.Models.ToDictionary(kv => kv.Key, kv => R(kv.Value)),
            Selection = report.Selection is { } s ? s with { Directory = R(s.Directory) } : null,
            Curation = report.Curation is { } c ? c with { Subset = R(c.Subset), Report = c.Report with { Pool = R(c.Report.Pool) } } : null,
            Predictions = report.Predictions.Select(p => p with { Image = R(p.Image) }).ToList(),
            Showcase = report.Showcase is { } sc ? sc with { Zip = R(sc.Zip) } : null,
            Search = report.Search is { } se ? se with { Queries = se.Queries.Select(q => q with { Hits = q.Hits.Select(h => h with { Path = R(h.Path) }).ToList() }).ToList() } : null,
        };
    }

    /// <summary>The serving showcase's contact sheet, beside report.md.</summary>
    public const string ShowcaseSheet = "showcase.png";

    /// <summary>Title of cka.png: the trained pair's CKA on the first training rows, which is not the number of
    /// `select`'s per-image probe (another sample, one row per image), so the title says which rows.</summary>
    public static string CkaTitle(int rows) => $"Linear CKA of the trained pair on the first {rows:N0} training pairs (one row per caption) vs a shuffled-pairs control";

    /// <summary>The report's stage-1 line for the trained pair, labelled apart from `select`'s table.</summary>
    public static string Stage1Line(IReadOnlyDictionary<string, double> s) =>
        $"Trained pair only, on the first {s["n"]:N0} training pairs (one row per caption; not `select`'s per-image probe below, so a different value): " +
        $"linear CKA {s["linear_cka"]:F3} (shuffled-pairs control {s["linear_cka_shuffled_control"]:F3}), unbiased {s["unbiased_linear_cka"]:F3} " +
        $"(control {s["unbiased_linear_cka_shuffled_control"]:F3}), RBF {s["rbf_cka"]:F3}, mutual 10-NN {s["mutual_knn10"]:F3}.";

    public static string Markdown(DemoReport r, IReadOnlyList<string> plots)
    {
        var inv = CultureInfo.InvariantCulture;
        string P(double v) => (100 * v).ToString("F1", inv);
        var sb = new StringBuilder();
        sb.AppendLine($"# MLNet.Align demo report{(r.Quick ? " (--quick)" : "")}\n");
        sb.AppendLine($"Encoders: image {r.Encoders["image"]}, text {r.Encoders["text"]}. Data: {string.Join(", ", r.Data.Select(kv => $"{kv.Key} {kv.Value}"))}.\n");
        sb.AppendLine($"Recipe: {r.Recipe}.\n");
        sb.AppendLine("Stage 1, " + char.ToLowerInvariant(Stage1Line(r.Stage1)[0]) + Stage1Line(r.Stage1)[1..] + "\n");
        var sets = r.ZeroShot.Keys.ToList();
        sb.AppendLine("## Zero-shot top-1 and held-out retrieval (%)\n");
        sb.AppendLine("| method | " + string.Join(" | ", sets.Select(s => $"{s} (n={r.ZeroShot[s].N})")) + " | " + string.Join(" | ", sets.Select(s => $"{s} std.")) + " | i2t R@1 | i2t R@5 | t2i R@1 | t2i R@5 | proxy |");
        sb.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", 2 * sets.Count + 5)));
        void Row(string name, MethodScores s) => sb.AppendLine($"| {name} | " + string.Join(" | ", sets.Select(k => P(s.ZeroShot[k].Top1))) + " | " +
            string.Join(" | ", sets.Select(k => s.ZeroShotStandardized is null ? "-" : P(s.ZeroShotStandardized[k].Top1))) +
            $" | {P(Pick(s).ImageToText.R1)} | {P(Pick(s).ImageToText.R5)} | {P(Pick(s).TextToImage.R1)} | {P(Pick(s).TextToImage.R5)} | {P(s.ProxyTop1)} |");
        Row($"**projector (mean of {r.Seeds.Count} seeds)**", new MethodScores { ZeroShot = r.ZeroShot, ZeroShotStandardized = r.ZeroShotStandardized, Retrieval = r.Retrieval, ProxyTop1 = r.ProxyTop1 });
        foreach (var (seed, s) in r.Seeds) Row($"projector {seed}", s);
        foreach (var (name, s) in r.Baselines) Row(name, s);
        sb.AppendLine("\n\"std.\" = with the optional test-time standardisation of the evaluated images (unlabelled statistics).\n");
        if (r.Auto is { } auto) AutoSection(sb, auto, sets, P);
        if (r.Retrieval.TryGetValue(DemoEval.PhotoKey, out var photoMain))
        {
            sb.AppendLine($"## Photo retrieval check ({photoMain.N} images, {photoMain.Captions} captions; measured only, never trained on or used for selection)\n");
            sb.AppendLine("| method | i2t R@1 | i2t R@5 | i2t R@10 | t2i R@1 | t2i R@5 | t2i R@10 |");
            sb.AppendLine("|---|---|---|---|---|---|---|");
            void PRow(string name, MethodScores s2) { var x = s2.Retrieval[DemoEval.PhotoKey]; sb.AppendLine($"| {name} | {P(x.ImageToText.R1)} | {P(x.ImageToText.R5)} | {P(x.ImageToText.R10)} | {P(x.TextToImage.R1)} | {P(x.TextToImage.R5)} | {P(x.TextToImage.R10)} |"); }
            PRow($"projector (mean of {r.Seeds.Count} seeds)", new MethodScores { ZeroShot = r.ZeroShot, Retrieval = r.Retrieval, ProxyTop1 = r.ProxyTop1 });
            foreach (var (name, s2) in r.Baselines) PRow(name, s2);
            sb.AppendLine();
        }
        if (r.PromptVariants is { Count: > 0 } pv)
        {
            sb.AppendLine($"## Class prompts and class-vector convention (default recipe, mean of {r.Seeds.Count} seeds, top-1 %)\n");
            sb.AppendLine("The headline numbers use the first column: the templates, class vectors averaged without renormalising (the paper's convention).\n");
            var names = DemoEval.PromptVariantNames.Where(n => pv.Values.First().ContainsKey(n)).ToList();
            sb.AppendLine("| set | " + string.Join(" | ", names) + " |");
            sb.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", names.Count)));
            foreach (var (set, v) in pv) sb.AppendLine($"| {set} | " + string.Join(" | ", names.Select(n => v.TryGetValue(n, out var x) ? P(x) : "-")) + " |");
            sb.AppendLine();
        }
        if (r.Selection is { } sel)
        {
            sb.AppendLine($"## Stage 1: encoder (and layer) selection on {sel.ProbeImages} probe training images (`select`: one row per image, captions averaged)\n");
            sb.AppendLine("Value [95% bias-corrected bootstrap interval] (shuffled-pairs control). Full table and heatmaps: " + Path.GetFileName(sel.Directory) + "/.\n");
            sb.AppendLine("| # | image | text | linear CKA | RBF CKA | mutual k-NN |");
            sb.AppendLine("|---|---|---|---|---|---|");
            string E(MetricEstimate e) => (e.Low is double lo && e.High is double hi ? $"{e.Value:F3} [{lo:F3}, {hi:F3}]" : $"{e.Value:F3}") + (e.Shuffled is double sh ? $" ({sh:F3})" : "");
            foreach (var p in sel.Pairs) sb.AppendLine($"| {p.Rank} | {p.Image} | {p.Text} | {E(p.LinearCka)} | {E(p.RbfCka)} | {E(p.MutualKnn)} |");
            sb.AppendLine();
        }
        if (r.Curation is { } cur)
        {
            sb.AppendLine($"## Stage 2: curated vs random subset at equal size (mean ± std over {cur.Curated.Seeds.Length} seeds)\n");
            sb.AppendLine($"Curation: {cur.Report.Selected} of {cur.Report.PoolRows} pairs for {cur.Report.Covered}/{cur.Report.Concepts} ImageNet-1k concepts (coverage {P(cur.Report.Coverage)}%, K {cur.Report.PerConcept}, cap {cur.Report.Cap}).\n");
            AblationTable(sb, [cur.Curated, cur.Random], sets, P);
        }
        if (r.CandidateCheck is { } cc)
        {
            sb.AppendLine($"## Does stage 1 predict stage 3? The default recipe on every candidate ({cc.Candidates[0].Result.Seeds.Length} seeds; {cc.LabelledPerSet} images per labelled set)\n");
            AblationTable(sb, cc.Candidates.Select(c => c.Result with { Name = $"{c.Result.Name} (CKA {c.Selection["linear_cka"]:F3})" }).ToList(), sets, P);
            sb.AppendLine("Spearman rho over " + cc.Candidates.Count + " candidates (|rho| >= 0.886 is significant at p < 0.05 for n = 6):\n");
            sb.AppendLine("| selection score | " + string.Join(" | ", DemoCandidateCheck.Downstream) + " |");
            sb.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", DemoCandidateCheck.Downstream.Length)));
            foreach (var (k, v) in cc.Spearman) sb.AppendLine($"| {k} | " + string.Join(" | ", DemoCandidateCheck.Downstream.Select(d => v[d].ToString("F2", inv))) + " |");
            sb.AppendLine();
        }
        sb.AppendLine("Linear probe (supervised ceiling): " + string.Join(", ", r.LinearProbe.Select(kv => $"{kv.Key} {P(kv.Value.Top1)}% ({kv.Value.NTrain} train)")) + ".\n");
        if (r.Ablation is { Count: > 0 })
        {
            sb.AppendLine("## Ablation (mean ± std over seeds)\n");
            AblationTable(sb, r.Ablation, sets, P);
        }
        sb.AppendLine("## Serving showcase: PredictionEngine on the reloaded zip\n");
        if (r.Showcase is { } sc)
        {
            sb.AppendLine($"{sc.Zip}, {DemoShowcase.AccuracyLine(r.Predictions)}. Images chosen before predicting ({sc.Rule}), never by the result." +
                          (r.Seeds.TryGetValue("seed0", out var s0) && s0.ZeroShot.Count > 0 ? $" For scale: the same model's top-1 over the whole {s0.ZeroShot.First().Key} test set is {P(s0.ZeroShot.First().Value.Top1)}%." : "") + "\n");
            if (sc.ContactSheet is { } sheet) sb.AppendLine($"![{sheet}]({sheet})\n");
        }
        sb.AppendLine("| image | origin | true | predicted (zip) | in-process | top-3 |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var p in r.Predictions)
            sb.AppendLine($"| {p.Image} | {p.Origin} | {p.True} | {(p.Correct ? "**" + p.Predicted + "**" : p.Predicted)} | {p.InProcessPredicted} | {Top3(p)} |");
        if (r.Search is { } search)
        {
            sb.AppendLine($"\n## Search: {search.Images:N0} held-out images indexed with the served model (`mlnet-align index`/`search`)\n");
            sb.AppendLine($"Indexed in {search.IndexSeconds} s. Text-to-image Recall@1/5/10 of the held-out captions through the index: " +
                $"{P(search.ThroughIndex!.R1)} / {P(search.ThroughIndex.R5)} / {P(search.ThroughIndex.R10)} %; computed directly on the same embeddings: " +
                $"{P(search.Direct!.R1)} / {P(search.Direct.R5)} / {P(search.Direct.R10)} %. The queries and their top 5 (scores are cosine similarities):\n");
            sb.AppendLine($"![{search.ContactSheet}]({search.ContactSheet})\n");
            foreach (var q in search.Queries)
                sb.AppendLine($"- {q.Query}: " + string.Join(", ", q.Hits.Select(h => $"{Path.GetFileName(h.Path)} ({h.Score:F3})")));
        }
        sb.AppendLine($"\nModels: aligned {r.Models["aligned"]}, zero-shot zip {r.Models["zero_shot_zip"]}.\n");
        sb.AppendLine("Timings (s): " + string.Join(", ", r.TimingsS.Select(kv => $"{kv.Key} {kv.Value}")) + ".\n");
        foreach (var p in plots.Where(p => p != r.Showcase?.ContactSheet && p != r.Search?.ContactSheet)) sb.AppendLine($"![{p}]({p})");
        return sb.ToString();
    }

    /// <summary>A markdown table of ablation-style rows (mean ± std): zero-shot per set, held-out R@1, photo R@1/5/10
    /// when scored, proxy.</summary>
    /// <summary>`train --recipe auto` on the demo's pairs: every recipe (mean ± std over seeds where trained), auto's
    /// choice and why, and the data-scaling curve.</summary>
    private static void AutoSection(StringBuilder sb, DemoAutoResult a, List<string> sets, Func<double, string> P)
    {
        var inv = CultureInfo.InvariantCulture;
        string Ms(IEnumerable<double> v) { var x = v.ToList(); double m = x.Average(); double sd = Math.Sqrt(x.Sum(t => (t - m) * (t - m)) / Math.Max(1, x.Count - 1)); return x.Count > 1 ? $"{(100 * m).ToString("F1", inv)} ± {(100 * sd).ToString("F1", inv)}" : (100 * m).ToString("F1", inv); }
        bool photo = a.Rows.Any(r => r.Mean.Retrieval.ContainsKey(DemoEval.PhotoKey));
        sb.AppendLine($"## What `train` chooses: every recipe on these pairs (`--recipe auto`)\n");
        sb.AppendLine($"Validation: {a.Validation}. Auto chose **{a.WinnerPerSeed[0]}** (per seed: {string.Join(", ", a.WinnerPerSeed)}): {a.Reason}\n");
        sb.AppendLine("| recipe | kind | validation score | " + string.Join(" | ", sets) + " | held-out i2t / t2i R@1 |" + (photo ? " photo i2t / t2i R@1 |" : "") + " kept |");
        sb.AppendLine("|---|---|---|" + string.Concat(Enumerable.Repeat("---|", sets.Count + 2 + (photo ? 1 : 0))));
        foreach (var row in a.Rows)
        {
            var held = row.Scores.Select(x => x.Retrieval.First(kv => kv.Key != DemoEval.PhotoKey).Value).ToList();
            var cells = new List<string>
            {
                row.Recipe == a.WinnerPerSeed[0] ? $"**{row.Recipe}**" : row.Recipe, row.Kind, Ms(row.ValidationScore.Select(v => v / 100)),
            };
            cells.AddRange(sets.Select(k => Ms(row.Scores.Select(x => x.ZeroShot[k].Top1))));
            cells.Add($"{Ms(held.Select(h => h.ImageToText.R1))} / {Ms(held.Select(h => h.TextToImage.R1))}");
            if (photo) cells.Add($"{Ms(row.Scores.Select(x => x.Retrieval[DemoEval.PhotoKey].ImageToText.R1))} / {Ms(row.Scores.Select(x => x.Retrieval[DemoEval.PhotoKey].TextToImage.R1))}");
            cells.Add(string.Join("; ", row.Kept.Where(k => k != null).Distinct()));
            sb.AppendLine("| " + string.Join(" | ", cells) + " |");
        }
        sb.AppendLine();
        if (a.Scaling is { Count: > 0 } sc)
        {
            sb.AppendLine("### Data scaling (one seed; every fraction judged on the same held-out groups; the chosen recipe in bold)\n");
            sb.AppendLine("| pairs | recipe | kind | validation score | " + string.Join(" | ", sets) + (photo ? " | photo R@1 (mean of both ways)" : "") + " |");
            sb.AppendLine("|---|---|---|---|" + string.Concat(Enumerable.Repeat("---|", sets.Count + (photo ? 1 : 0))));
            foreach (var p in sc)
                sb.AppendLine($"| {p.Pairs} ({(100 * p.Fraction).ToString("F0", inv)}%) | {(p.Chosen ? $"**{p.Recipe}**" : p.Recipe)} | {p.Kind} | {p.ValidationScore.ToString("F1", inv)} | " +
                    string.Join(" | ", sets.Select(k => P(p.Scores.ZeroShot[k].Top1))) +
                    (photo ? $" | {P((p.Scores.Retrieval[DemoEval.PhotoKey].ImageToText.R1 + p.Scores.Retrieval[DemoEval.PhotoKey].TextToImage.R1) / 2)}" : "") + " |");
            sb.AppendLine();
        }
    }

    private static void AblationTable(StringBuilder sb, IReadOnlyList<AblationRow> rows, IReadOnlyList<string> sets, Func<double, string> P)
    {
        bool photo = rows[0].Mean.ContainsKey("photo_r1");
        sb.AppendLine("| variant | seeds | " + string.Join(" | ", sets.Select(s => $"{s} (n={rows[0].N[s]})")) + " | held-out R@1 |" +
                      (photo ? $" photo R@1 (n={rows[0].N[DemoEval.PhotoKey]}) | photo R@5 | photo R@10 |" : "") + " proxy |");
        sb.AppendLine("|---|---|" + string.Concat(Enumerable.Repeat("---|", sets.Count + 2 + (photo ? 3 : 0))));
        foreach (var a in rows)
        {
            string M(string k) => $"{P(a.Mean[k])} ± {P(a.Std[k])}";
            sb.AppendLine($"| {a.Name.Trim()} | {a.Seeds.Length} | " + string.Join(" | ", sets.Select(M)) + $" | {M("heldout_r1")} |" +
                          (photo ? $" {M("photo_r1")} | {M("photo_r5")} | {M("photo_r10")} |" : "") + $" {M("proxy")} |");
        }
        sb.AppendLine();
    }

    private static string Top3(ShowcaseRow p) => string.Join(", ", p.Top3.Select(t => $"{t.Label} {t.Score.ToString("F3", CultureInfo.InvariantCulture)}"));

    public static void PrintSummary(DemoReport r, string outDir)
    {
        var t = new Table().Title("Zero-shot top-1 and held-out Recall@1");
        var sets = r.ZeroShot.Keys.ToList();
        t.AddColumn("method");
        foreach (var s in sets) t.AddColumn($"{s} (n={r.ZeroShot[s].N})");
        t.AddColumns("i2t R@1", "t2i R@1", "proxy");
        void Row(string n, MethodScores s) => t.AddRow(new[] { Markup.Escape(n) }.Concat(sets.Select(k => $"{s.ZeroShot[k].Top1:P1}"))
            .Concat([$"{Pick(s).ImageToText.R1:P1}", $"{Pick(s).TextToImage.R1:P1}", $"{s.ProxyTop1:P1}"]).ToArray());
        Row($"projector (mean of {r.Seeds.Count} seeds)", new MethodScores { ZeroShot = r.ZeroShot, Retrieval = r.Retrieval, ProxyTop1 = r.ProxyTop1 });
        foreach (var (name, s) in r.Baselines) Row(name, s);
        t.AddRow(new[] { "linear probe (supervised)" }.Concat(sets.Select(k => $"{r.LinearProbe[k].Top1:P1}")).Concat(["", "", ""]).ToArray());
        AnsiConsole.Write(t);
        var p = new Table().Title(Markup.Escape($"Serving showcase: {r.Showcase?.Zip} reloaded in a PredictionEngine"));
        p.AddColumns("image (under --out)", "true", "predicted", "top-3 (probability)");
        foreach (var row in r.Predictions)
            p.AddRow(Markup.Escape(row.Image), Markup.Escape(row.True), (row.Correct ? "[green]" : "[red]") + Markup.Escape(row.Predicted) + "[/]", Markup.Escape(Top3(row)));
        AnsiConsole.Write(p);
        if (r.Showcase is { } sc)
            Console.WriteLine($"Showcase: {DemoShowcase.AccuracyLine(r.Predictions)} (chosen before predicting: {sc.Rule})" +
                              (sc.ContactSheet is null ? "" : $"; contact sheet {Path.Combine(outDir, sc.ContactSheet)}"));
        Console.WriteLine($"Report: {Path.Combine(outDir, "report.md")} (total {r.TimingsS["total"]} s)");
    }

    private static void WriteAtomic(string path, string text) => MLNet.Align.AtomicFile.WriteAllText(path, text);
}
