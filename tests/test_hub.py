import pytest
from huggingface_hub import ModelCard

from hfqd.hub.card import CardInfo, make_model_card
from hfqd.hub.push import PushError, push_folder


def _info(**overrides):
    kwargs = dict(
        repo_id="me/tiny-4bit", base_model="Helsinki-NLP/opus-mt-en-de", datasets=["wmt16"], bits=4,
        bucket_size=256, method="qd", results_markdown="| method | bleu |\n|---|---|\n| qd4 | 30.0 |",
        file_bytes=1000, theoretical_bytes=990.0, fp32_bytes=8000, command="accelerate launch recipes/wmt_en_de.py",
        language=["en", "de"],
    )
    kwargs.update(overrides)
    return CardInfo(**kwargs)


def test_card_metadata_and_content(tmp_path):
    card = make_model_card(_info())
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    data = loaded.data.to_dict()
    assert data["library_name"] == "transformers" and data["base_model"] == "Helsinki-NLP/opus-mt-en-de"
    assert data["datasets"] == ["wmt16"] and data["metrics"] == ["bleu", "chrf"]
    assert {"hfqd", "4-bit", "quantized"} <= set(data["tags"])
    text = loaded.text
    assert "import hfqd" in text and "AutoModelForSeq2SeqLM.from_pretrained(\"me/tiny-4bit\")" in text
    assert "| qd4 | 30.0 |" in text and "8.0x" in text and "accelerate launch recipes/wmt_en_de.py" in text


def test_card_leaves_local_paths_out_of_metadata(tmp_path):
    teacher = tmp_path / "sub" / ".." / "my-teacher"
    teacher.mkdir(parents=True)
    card = make_model_card(_info(base_model=str(teacher), datasets=[str(teacher)], parent_model=None))
    data = card.data.to_dict()
    assert "base_model" not in data and "datasets" not in data
    # In the text a local teacher is named, not linked, and paths are written without "..".
    assert "student of `my-teacher`" in card.content and "](/" not in card.content and "/../" not in card.content


class _FakeApi:
    def __init__(self, token="hf_x", fail=None):
        self.token, self.fail, self.calls = token, fail, []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs.get("private"), kwargs.get("exist_ok")))

    def upload_folder(self, **kwargs):
        if self.fail:
            raise self.fail
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs["folder_path"], kwargs["commit_message"]))
        return type("Info", (), {"commit_url": "https://hub/commit/1"})()


def test_push_uploads_the_folder_in_one_commit(tmp_path):
    api = _FakeApi()
    url = push_folder(str(tmp_path), "me/tiny-4bit", private=True, api=api, commit_message="Upload hfqd model")
    assert url == "https://hub/commit/1"
    assert api.calls == [
        ("create_repo", "me/tiny-4bit", True, True),
        ("upload_folder", "me/tiny-4bit", str(tmp_path), "Upload hfqd model"),
    ]


def test_push_without_token_or_network_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    monkeypatch.setattr("hfqd.hub.push.get_token", lambda: None)
    with pytest.raises(PushError, match="No Hugging Face token"):
        push_folder(str(tmp_path), "me/x", api=_FakeApi(token=None))
    with pytest.raises(PushError, match=f"saved in {tmp_path}"):
        push_folder(str(tmp_path), "me/x", api=_FakeApi(fail=OSError("unreachable")))
    assert (tmp_path / "model.safetensors").read_bytes() == b"x"
